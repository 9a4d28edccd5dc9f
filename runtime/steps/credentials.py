"""Credentials at run time: flows and envelopes carry only ids; the worker asks the hub's vault for the values
when a step runs (through `CredentialSource`, which the app implements), keeps them briefly in memory, passes
them to the step, and masks them in whatever the step's run records would show."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any, Protocol

import orjson

MASK = "••••••"
MIN_SECRET_LENGTH = 4  # shorter values (a port, "true") would mask ordinary text


class CredentialUnavailable(Exception):
    """The credential cannot be used (deleted, not this tenant's, its owner left, cannot be decrypted): the step
    fails for good with this message, retries would not help."""


class CredentialSource(Protocol):
    def credential_values(self, tenant: str, credential_id: str) -> dict[str, Any]:
        """The credential's values, with its `kind`. Raises CredentialUnavailable; any other error is taken as
        passing (the step is retried)."""
        ...


class CachedCredentials:
    """The vault is asked once per credential and `ttl_s`, not once per message."""

    def __init__(self, source: CredentialSource, ttl_s: float = 30.0, max_entries: int = 10_000) -> None:
        self.source = source
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, tenant: str, credential_id: str) -> dict[str, Any]:
        key = (tenant, credential_id)
        now = time.monotonic()
        with self._lock:
            found = self._cache.get(key)
            if found is not None and found[0] > now:
                return found[1]
        values = self.source.credential_values(tenant, credential_id)
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[key] = (now + self.ttl_s, values)
        return values


def secret_strings(values: dict[str, Any] | None) -> tuple[str, ...]:
    """The values worth masking: every string of the credential long enough to be a secret (not its kind)."""
    if not values:
        return ()
    found = {str(v) for k, v in values.items() if k != "kind" and v is not None and not isinstance(v, bool)}
    return tuple(sorted((s for s in found if len(s) >= MIN_SECRET_LENGTH), key=len, reverse=True))


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_json(encoded: str, secrets: Iterable[str]) -> str:
    """Mask secrets inside a JSON document, as they appear there (escaped)."""
    for secret in secrets:
        escaped = orjson.dumps(secret).decode()[1:-1]
        if escaped in encoded:
            encoded = encoded.replace(escaped, MASK)
    return encoded
