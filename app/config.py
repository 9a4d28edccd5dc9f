"""Hub configuration, read once from HUB_* environment variables and an optional .env file.

Every value has an embedded default so that `hub up` works on a bare laptop; production switches by setting
variables alone. A bad value raises ConfigError with one line naming the variable.
"""

from __future__ import annotations

import base64
import binascii
import functools
from pathlib import Path
from typing import Literal

import pydantic
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from app.errors import ConfigError

ENV_PREFIX = "HUB_"
KEY_BYTES = 32


class MasterKey(pydantic.BaseModel):
    """One entry of the master key ring: the first key encrypts, every key decrypts."""

    key_id: str
    key: bytes = Field(repr=False)


class HubSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    mode: Literal["dev", "production"] = "dev"
    data_dir: Path = Path("var")
    database_url: str = ""
    redis_url: str = ""
    redis_appendfsync: Literal["everysec", "always"] = "everysec"
    secret_keys: str = Field(default="", repr=False)
    executor: Literal["inline", "process", "docker"] = "process"
    # Where imported Python components' code is installed for the workers' runners (empty: $HUB_DATA_DIR/components).
    components_dir: str = ""
    # Runners (processes, containers) per worker: instances of one component of a tenant that start while a
    # backlog waits, all the tenant's runners, and how long an extra instance or the last one may stay unused.
    max_instances: int = Field(default=4, ge=1, le=64)
    tenant_max_runners: int = Field(default=16, ge=1, le=1024)
    runner_scale_down_s: float = Field(default=30.0, ge=1)
    runner_idle_s: float = Field(default=300.0, ge=1)
    # The user every component container runs as, whatever its image says ("uid:gid"; nobody by default).
    container_user: str = Field(default="65534:65534", pattern=r"^[0-9]+(:[0-9]+)?$")
    web_port: int = Field(default=3000, ge=1, le=65535)
    public_base_url: str = ""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # One JSON object per line (for log collectors) or text; "auto": text on a terminal, else JSON.
    log_format: Literal["auto", "text", "json"] = "auto"
    # Run history kept by default (a tenant's own setting overrides): days since a run started (0: no age
    # limit) and the newest runs per tenant (0: no count limit). The hourly retention job deletes the rest.
    # How long a dead active scheduler keeps the others waiting (they take over within this many seconds).
    scheduler_lease_s: float = Field(default=20.0, ge=2, le=600)
    retention_days: int = Field(default=30, ge=0, le=36_500)
    retention_runs: int = Field(default=0, ge=0, le=100_000_000)
    session_days: int = Field(default=14, ge=1, le=365)
    login_max_failures: int = Field(default=5, ge=1, le=1000)
    login_window_seconds: int = Field(default=900, ge=10)
    # Internal hosts/networks that steps may call, comma-separated (e.g. "10.1.0.0/16,*.corp.example").
    egress_allow: str = ""
    # Webhook requests per second a tenant may send (0: no limit); a tenant's own quota overrides it.
    webhook_tenant_rps: float = Field(default=0, ge=0, le=1_000_000)
    # Messages a tenant may have waiting before new work is refused (503/429); a tenant's quota overrides it.
    tenant_max_backlog: int = Field(default=100_000, ge=1)
    # Step loops per `hub worker` process, sharing its executors: each counts as one worker in the fair share
    # (a flooding tenant keeps at most all of them but one while another tenant is active).
    worker_slots: int = Field(default=4, ge=1, le=64)
    # Default quotas of a tenant (0: no limit); Settings overrides them per tenant. Steps executing at once
    # across all workers, warm runners per worker, and outbound HTTP requests per second of its steps.
    tenant_max_concurrent_steps: int = Field(default=0, ge=0, le=100_000)
    tenant_outbound_rps: int = Field(default=0, ge=0, le=1_000_000)
    # Memory limits of a tenant's warm runners (processes, containers) together, per worker (0: no limit).
    tenant_max_runner_memory_mb: int = Field(default=0, ge=0, le=1_048_576)
    # Bearer token a Prometheus scraper sends for /metrics (empty: only clients on this machine are answered).
    metrics_token: str = Field(default="", repr=False)
    # The standalone router (`hub router`): where it listens.
    router_host: str = "127.0.0.1"
    router_port: int = Field(default=8100, ge=1, le=65535)
    # Single sign-on through an OpenID Connect provider, beside local accounts (unset: local accounts only).
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = Field(default="", repr=False)
    oidc_name: str = "single sign-on"  # the login button says "Log in with <name>"
    oidc_scopes: str = "openid email profile"
    # Whether a person the provider vouches for, with no account here yet, gets one (without any tenant).
    oidc_create_users: bool = False

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not value:
            return value
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL ({exc})") from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError("only sqlite:/// and postgresql+psycopg:// URLs are supported")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _check_public_base_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL, e.g. https://hub.example.com")
        return value.rstrip("/")

    @field_validator("egress_allow")
    @classmethod
    def _check_egress_allow(cls, value: str) -> str:
        from runtime.net.egress import EgressPolicy

        EgressPolicy.parse(value)  # raises ValueError naming the entry
        return value

    @field_validator("secret_keys")
    @classmethod
    def _check_secret_keys(cls, value: str) -> str:
        parse_key_ring(value)
        return value

    @field_validator("oidc_issuer")
    @classmethod
    def _check_oidc_issuer(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be the provider's issuer URL, e.g. https://accounts.example.com")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _oidc_complete(self) -> HubSettings:
        if self.oidc_issuer and not (self.oidc_client_id and self.oidc_client_secret):
            raise ValueError(
                "oidc_client_id: HUB_OIDC_ISSUER is set, so HUB_OIDC_CLIENT_ID and HUB_OIDC_CLIENT_SECRET are needed too"
            )
        return self

    @model_validator(mode="after")
    def _production_needs_keys(self) -> HubSettings:
        if self.mode == "production" and not self.secret_keys:
            raise ValueError(
                "secret_keys: required when HUB_MODE=production; generate one with `hub keys generate`"
            )
        return self

    # Derived values: computed, never stored, so there is one source of truth.
    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def components_path(self) -> Path:
        return (
            Path(self.components_dir).expanduser().resolve()
            if self.components_dir
            else self.data_path / "components"
        )

    @property
    def effective_database_url(self) -> str:
        if not self.database_url:
            return f"sqlite:///{self.data_path / 'hub.db'}"
        url = make_url(self.database_url)
        if url.drivername == "postgresql":  # psycopg 3 is the driver we ship, not psycopg2
            url = url.set(drivername="postgresql+psycopg")
        return url.render_as_string(hide_password=False)

    @property
    def effective_public_base_url(self) -> str:
        return self.public_base_url or f"http://localhost:{self.web_port}"

    @property
    def uses_embedded_redis(self) -> bool:
        return not self.redis_url

    def as_environment(self) -> dict[str, str]:
        """HUB_* variables reproducing this configuration in a child process started in another folder."""
        values = self.model_dump()
        values["data_dir"] = self.data_path
        return {f"{ENV_PREFIX}{name.upper()}": str(value) for name, value in values.items()}


def parse_key_ring(value: str) -> list[MasterKey]:
    """Parse `id:base64key,id2:base64key2` (ids optional). Raises ValueError naming the bad entry."""
    keys: list[MasterKey] = []
    for position, entry in enumerate(filter(None, (part.strip() for part in value.split(","))), start=1):
        key_id, _, encoded = entry.rpartition(":")
        key_id = key_id or f"k{position}"
        try:
            raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"key {position} is not base64") from None
        if len(raw) != KEY_BYTES:
            raise ValueError(f"key {position} must decode to {KEY_BYTES} bytes, got {len(raw)}")
        if any(k.key_id == key_id for k in keys):
            raise ValueError(f"key id {key_id!r} appears twice")
        keys.append(MasterKey(key_id=key_id, key=raw))
    return keys


def _describe(error: dict) -> str:
    field = str(error["loc"][0]) if error.get("loc") else ""
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if not field and ":" in message:
        field, _, message = message.partition(": ")
    name = f"{ENV_PREFIX}{field.upper()}" if field else "configuration"
    if "input" in error and error.get("type") not in ("value_error",) and field != "secret_keys":
        message = f"{message} (got {error['input']!r})"
    return f"{name}: {message}"


def load_settings(**overrides: object) -> HubSettings:
    """Read the configuration, turning pydantic's report into one actionable line."""
    try:
        return HubSettings(**overrides)
    except pydantic.ValidationError as exc:
        raise ConfigError(_describe(exc.errors()[0])) from None


@functools.cache
def get_settings() -> HubSettings:
    """The process-wide configuration, read once."""
    return load_settings()
