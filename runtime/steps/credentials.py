"""Credentials at run time: flows and envelopes carry only ids; the worker asks the hub's vault for the values
when a step runs (through `CredentialSource`, which the app implements), keeps them briefly in memory, passes
them to the step, and masks them in whatever the step's run records would show."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol
from urllib.parse import quote, quote_plus

MASK = "••••••"
MIN_SECRET_LENGTH = 4  # shorter values (a port, "true") would mask ordinary text
# An OAuth2 access token is renewed this long before it expires, so a step never starts with one about to lapse.
REFRESH_AHEAD_S = 60.0


def renewal_margin(values: dict[str, Any]) -> float:
    """How long before its expiry an access token is renewed: REFRESH_AHEAD_S, but at most half its lifetime
    (a token that lives 30 s would otherwise be due the moment it arrives, and renewed for every step)."""
    lifetime = values.get("expires_in")
    if isinstance(lifetime, int | float) and lifetime > 0:
        return min(REFRESH_AHEAD_S, float(lifetime) / 2)
    return REFRESH_AHEAD_S


def expires_within(values: dict[str, Any], seconds: float, now: float | None = None) -> bool:
    """Whether the credential's access token (`expires_at`, epoch seconds) lapses within `seconds`."""
    expires_at = values.get("expires_at")
    if not isinstance(expires_at, int | float):
        return False
    return float(expires_at) - (time.time() if now is None else now) < seconds


class CredentialUnavailable(Exception):
    """The credential cannot be used (deleted, not this tenant's, its owner left, cannot be decrypted): the step
    fails for good with this message, retries would not help."""


class CredentialSource(Protocol):
    def credential_values(self, tenant: str, credential_id: str) -> dict[str, Any]:
        """The credential's values, with its `kind`. Raises CredentialUnavailable; any other error is taken as
        passing (the step is retried)."""
        ...


class CachedCredentials:
    """The vault is asked once per credential and `ttl_s`, not once per message; the strings to mask are worked
    out once per fetch too. With `generation` (the tenant's change counter, see StreamsBus), an edited credential
    is read again within `generation_check_s` instead of at the end of its `ttl_s`."""

    def __init__(
        self,
        source: CredentialSource,
        ttl_s: float = 30.0,
        max_entries: int = 10_000,
        generation: Callable[[str], int] | None = None,
        generation_check_s: float = 1.0,
    ) -> None:
        self.source = source
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.generation = generation
        self.generation_check_s = generation_check_s
        self._cache: dict[tuple[str, str], tuple[float, dict[str, Any], tuple[str, ...], int]] = {}
        self._unreadable: dict[tuple[str, str], tuple[float, int]] = {}
        self._generations: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def _generation_of(self, tenant: str, now: float) -> int:
        if self.generation is None:
            return 0
        with self._lock:
            known = self._generations.get(tenant)
        if known is not None and known[0] > now:
            return known[1]
        try:
            current = self.generation(tenant)
        except Exception:  # Redis away for a moment: keep what we know rather than fail the step
            return known[1] if known else 0
        with self._lock:
            self._generations[tenant] = (now + self.generation_check_s, current)
        return current

    def resolve(self, tenant: str, credential_id: str) -> tuple[dict[str, Any], tuple[str, ...]]:
        """The credential's values (shared: callers copy before handing them out) and the strings to mask."""
        key = (tenant, credential_id)
        now = time.monotonic()
        generation = self._generation_of(tenant, now)
        with self._lock:
            found = self._cache.get(key)
            if found is not None and found[0] > now and found[3] == generation:
                return found[1], found[2]
        values = self.source.credential_values(tenant, credential_id)
        secrets = secret_strings(values)
        deadline = now + self.ttl_s
        expires_at = values.get("expires_at")
        if isinstance(expires_at, int | float):  # asked again when the token is due for renewal, not later
            deadline = min(deadline, now + max(0.0, float(expires_at) - renewal_margin(values) - time.time()))
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[key] = (deadline, values, secrets, generation)
        return values, secrets

    def secrets_of(self, tenant: str, credential_ids: Iterable[str]) -> tuple[str, ...]:
        """The strings to mask for several credentials (a whole flow's): a secret one step passes on is masked in
        what is recorded of every later step. A credential that cannot be read adds nothing, and is not asked for
        again before `ttl_s` (its own step fails on its own)."""
        found: set[str] = set()
        now = time.monotonic()
        generation = self._generation_of(tenant, now)
        for credential_id in credential_ids:
            with self._lock:
                cached = self._cache.get((tenant, credential_id))
                unreadable = self._unreadable.get((tenant, credential_id))
            missing = unreadable is not None and unreadable[0] > now and unreadable[1] == generation
            if cached is not None and cached[0] > now and cached[3] == generation:
                found.update(cached[2])
                continue
            if missing:
                continue
            try:
                found.update(self.resolve(tenant, credential_id)[1])
            except Exception:  # masking must not fail a step that does not use this credential
                with self._lock:
                    self._unreadable[(tenant, credential_id)] = (now + self.ttl_s, generation)
        return tuple(sorted(found, key=len, reverse=True))

    def forget(self, tenant: str, credential_id: str) -> None:
        """Drop a credential that changed (edited, reconnected) so that the next step reads it again."""
        with self._lock:
            self._cache.pop((tenant, credential_id), None)
            self._unreadable.pop((tenant, credential_id), None)

    def get(self, tenant: str, credential_id: str) -> dict[str, Any]:
        return self.resolve(tenant, credential_id)[0]


# Fields that name things rather than prove identity: masking them would blank ordinary text in run records.
NOT_SECRET = frozenset({
    "kind", "header", "username", "user", "host", "hostname", "port", "database", "from", "from_address",
    "starttls", "tls", "ssl", "scope", "scopes", "token_type", "expires_at", "expires_in", "account", "email",
})  # fmt: skip


def _leaves(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if str(key).lower() not in NOT_SECRET:
                yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)


def secret_strings(values: dict[str, Any] | None) -> tuple[str, ...]:
    """The strings to mask: every secret-bearing string of the credential (nested ones too, e.g. OAuth2 tokens),
    with the forms in which they travel (URL-encoded; `user:password` in base64 for basic auth). Longest first,
    so that a secret containing another is masked whole."""
    if not values:
        return ()
    found: set[str] = set()
    for text in _leaves(values):
        if len(text) >= MIN_SECRET_LENGTH:
            found |= {text, quote(text, safe=""), quote_plus(text)}
    user, password = values.get("username"), values.get("password")
    if isinstance(user, str) and isinstance(password, str) and password:
        found.add(base64.b64encode(f"{user}:{password}".encode()).decode())
    return tuple(sorted(found, key=len, reverse=True))


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def mask(value: Any, secrets: tuple[str, ...]) -> Any:
    """`value` with every secret masked inside its strings (keys too); other values unchanged. Works on the
    structure, never on encoded JSON: a secret like "true" or "2525" must not break the document."""
    if not secrets:
        return value
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {redact(str(k), secrets): mask(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(v, secrets) for v in value]
    return value
