"""The master key ring: from HUB_SECRET_KEYS, or in dev mode a key generated once into the data folder."""

from __future__ import annotations

import base64
import logging
import secrets
from pathlib import Path

from app.config import KEY_BYTES, HubSettings, MasterKey, parse_key_ring
from app.errors import ConfigError

log = logging.getLogger(__name__)
DEV_KEY_FILE = "secret.key"


def generate_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii").rstrip("=")


def dev_key_path(settings: HubSettings) -> Path:
    return settings.data_path / DEV_KEY_FILE


def ensure_dev_key(settings: HubSettings) -> None:
    """In dev mode without HUB_SECRET_KEYS, create the local key once (never in production)."""
    if settings.secret_keys or settings.mode == "production":
        return
    path = dev_key_path(settings)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(f"dev:{generate_key()}\n")
    log.warning(
        "HUB_SECRET_KEYS is not set: generated a development key in %s. Back it up: credentials "
        "cannot be decrypted without it. Set HUB_SECRET_KEYS in production.",
        path,
    )


def load_key_ring(settings: HubSettings) -> list[MasterKey]:
    if settings.secret_keys:
        return parse_key_ring(settings.secret_keys)
    if settings.mode == "production":  # pragma: no cover - HubSettings already refuses this
        raise ConfigError("HUB_SECRET_KEYS: required when HUB_MODE=production")
    path = dev_key_path(settings)
    if not path.exists():
        raise ConfigError(f"HUB_SECRET_KEYS: not set and no development key at {path}; run `hub up` once")
    try:
        return parse_key_ring(path.read_text().strip())
    except ValueError as exc:
        raise ConfigError(f"HUB_SECRET_KEYS: the development key in {path} is damaged ({exc})") from None
