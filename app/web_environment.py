"""The environment under which Reflex runs offline: bun from the project's tool folder, no network probes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from app.errors import ConfigError
from app.paths import PROJECT_ROOT, TOOLS_DIR


def bun_path() -> Path:
    bun = TOOLS_DIR / "node_modules" / ".bin" / "bun"
    if bun.exists():
        return bun
    found = shutil.which("bun")
    if found:
        return Path(found)
    raise ConfigError(
        "bun is not installed: run `make setup` (it installs bun from the npm registry into .tools/)"
    )


def _npm_registry() -> str:
    if registry := os.environ.get("NPM_CONFIG_REGISTRY"):
        return registry
    npm = shutil.which("npm")
    if npm is None:
        return "https://registry.npmjs.org/"
    result = subprocess.run([npm, "config", "get", "registry"], capture_output=True, text=True, check=False)
    return result.stdout.strip() or "https://registry.npmjs.org/"


def reflex_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """Variables that keep Reflex from downloading bun or probing the network (each probe costs seconds)."""
    env = dict(os.environ if base is None else base)
    bun = bun_path()
    env.update(
        {
            "REFLEX_DIR": str(PROJECT_ROOT / ".reflex-home"),
            "REFLEX_BUN_PATH": str(bun),
            "NPM_CONFIG_REGISTRY": _npm_registry(),
            "REFLEX_HTTP_CLIENT_BIND_ADDRESS": "0.0.0.0",  # noqa: S104 - skips an IPv6 reachability probe
            "REFLEX_CHECK_LATEST_VERSION": "0",
            "REFLEX_TELEMETRY_ENABLED": "false",
            "BUN_INSTALL_CACHE_DIR": str(TOOLS_DIR / "bun-cache"),
            "BUN_RUNTIME_TRANSPILER_CACHE_PATH": str(TOOLS_DIR / "bun-transpiler-cache"),
            "PATH": f"{bun.parent}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    return env
