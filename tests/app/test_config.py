"""Configuration: defaults work with nothing set; each bad value gives one line naming the variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.config import load_settings, parse_key_ring
from app.errors import ConfigError
from app.keyring import ensure_dev_key, generate_key, load_key_ring


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("HUB_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env file


def test_embedded_defaults(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.mode == "dev"
    assert settings.uses_embedded_redis
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'var' / 'hub.db'}"
    assert settings.effective_public_base_url == "http://localhost:3000"


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("HUB_WEB_PORT=4100\nHUB_LOG_LEVEL=debug\n")
    settings = load_settings()
    assert settings.web_port == 4100
    assert settings.log_level == "DEBUG"


def test_plain_postgresql_url_uses_psycopg3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_DATABASE_URL", "postgresql://hub:pw@db.internal:5432/hub")
    assert load_settings().effective_database_url == "postgresql+psycopg://hub:pw@db.internal:5432/hub"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("HUB_DATABASE_URL", "mysql://x/y", "only sqlite"),
        ("HUB_DATABASE_URL", "not a url", "not a database URL"),
        ("HUB_REDIS_URL", "http://localhost", "must start with redis://"),
        ("HUB_EXECUTOR", "kubernetes", "'inline', 'process' or 'docker'"),
        ("HUB_MAX_INSTANCES", "0", "greater than or equal to 1"),
        ("HUB_TENANT_MAX_RUNNERS", "many", "valid integer"),
        ("HUB_CONTAINER_USER", "root", "should match pattern"),
        ("HUB_WEB_PORT", "eighty", "valid integer"),
        ("HUB_WEB_PORT", "70000", "less than or equal to 65535"),
        ("HUB_PUBLIC_BASE_URL", "hub.example.com", "http:// or https://"),
        ("HUB_LOG_LEVEL", "chatty", "'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
        ("HUB_SECRET_KEYS", "c2hvcnQ", "must decode to 32 bytes, got 5"),
        ("HUB_SECRET_KEYS", "a:!!!!", "not base64"),
        ("HUB_MODE", "staging", "'dev' or 'production'"),
        ("HUB_EGRESS_ALLOW", "10.0.0.0/33", "'10.0.0.0/33' is neither a host name nor an address or network"),
        ("HUB_OIDC_ISSUER", "accounts.example.com", "the provider's issuer URL"),
    ],
)
def test_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{variable}: ")
    assert expected in message
    assert "\n" not in message


def test_production_requires_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_MODE", "production")
    with pytest.raises(ConfigError, match=r"^HUB_SECRET_KEYS: required when HUB_MODE=production"):
        load_settings()
    monkeypatch.setenv("HUB_SECRET_KEYS", generate_key())
    assert load_settings().mode == "production"


def test_key_ring_order_and_ids() -> None:
    first, second = generate_key(), generate_key()
    ring = parse_key_ring(f"new:{first}, old:{second}")
    assert [k.key_id for k in ring] == ["new", "old"]
    assert all(len(k.key) == 32 for k in ring)
    with pytest.raises(ValueError, match="appears twice"):
        parse_key_ring(f"a:{first},a:{second}")


def test_dev_key_generated_once_and_private(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    ensure_dev_key(settings)
    path = tmp_path / "data" / "secret.key"
    content = path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600
    ensure_dev_key(settings)
    assert path.read_text() == content
    assert len(load_key_ring(settings)) == 1


def test_missing_dev_key_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="HUB_SECRET_KEYS: not set and no development key"):
        load_key_ring(load_settings(data_dir=tmp_path / "empty"))


def _hub(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_cli_bad_value_exits_nonzero_with_one_line(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    result = _hub("migrate", env={**env, "HUB_EXECUTOR": "nope", "HUB_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["error: HUB_EXECUTOR: Input should be 'inline', 'process' or 'docker' (got 'nope')"]


def test_cli_unreachable_database_names_the_variable(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    result = _hub(
        "migrate",
        env={
            **env,
            "HUB_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
            "HUB_DATA_DIR": str(tmp_path),
        },
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: HUB_DATABASE_URL: cannot connect to")


def test_cli_without_redis_explains_what_to_do(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    result = _hub("worker", env={**env, "HUB_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "HUB_REDIS_URL: not set and no embedded Redis is running" in result.stderr


def test_single_sign_on_needs_its_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_OIDC_ISSUER", "https://accounts.example.com/")
    with pytest.raises(ConfigError, match=r"^HUB_OIDC_CLIENT_ID: HUB_OIDC_ISSUER is set, so"):
        load_settings()
    monkeypatch.setenv("HUB_OIDC_CLIENT_ID", "hub")
    monkeypatch.setenv("HUB_OIDC_CLIENT_SECRET", "s3cret")
    assert load_settings().oidc_issuer == "https://accounts.example.com"
