"""Keeping OAuth2 access tokens fresh: renewed ahead of expiry by one process at a time, whatever the number of
workers and steps asking at once.

Single flight: a Redis lock per credential (shared by every worker on every host). Whoever holds it reads the
credential again from the database (another holder may have renewed it meanwhile), asks the provider only if it
is still due, and writes the new tokens before letting go. A provider that rotates refresh tokens revokes the old
one on use: since the new one is stored before the lock is released, and nobody reads it without the lock, no
worker ever sends a revoked refresh token.

A refusal (invalid_grant: the user revoked access, the refresh token expired) is stored on the credential and
shown on the Credentials page until someone reconnects; the step fails with that message."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import redis
from redis.exceptions import LockError
from redis.lock import Lock
from sqlalchemy.orm import Session

from app.oauth import provider
from app.oauth.clients import oauth_client_config
from app.oauth.provider import ClientConfig, ProviderRefused, ProviderUnreachable
from app.storage.db import Database
from app.storage.models import Credential, OAuthClient
from app.storage.scoping import tenant_session
from app.storage.types import utcnow
from app.vault.store import Vault
from runtime.net.egress import EgressPolicy
from runtime.steps.credentials import expires_within, redact, renewal_margin, secret_strings

TOKEN_KINDS = ("oauth2_code", "oauth2_client")
LOCK_TTL_S = 4 * provider.HTTP_TIMEOUT_S  # longer than any token request can take
WAIT_S = LOCK_TTL_S + 5


class TokenRefreshFailed(Exception):
    """The provider refused to renew the token: a person must reconnect (the message says so)."""


class TokenRefreshBusy(Exception):
    """Another process holds the renewal lock for too long, or the provider is unreachable: try again later."""


def _lock_key(tenant_id: uuid.UUID, credential_id: uuid.UUID) -> str:
    return f"hub:{tenant_id.hex}:oauth-refresh:{credential_id.hex}"


def client_config(
    session: Session, vault: Vault, credential: Credential, values: dict[str, Any]
) -> ClientConfig:
    """The OAuth2 client a token credential renews with: the tenant's registered client (authorization code) or
    the credential's own client id and secret (client credentials)."""
    if credential.kind == "oauth2_client":
        return ClientConfig(
            client_id=str(values.get("client_id", "")),
            client_secret=str(values.get("client_secret", "")),
            token_url=str(values.get("token_url", "")),
            scopes=tuple(str(values.get("scope") or "").split()),
        )
    client = None
    with contextlib.suppress(ValueError):
        client = session.get(OAuthClient, uuid.UUID(str(values.get("client", ""))))
    if client is None:
        raise TokenRefreshFailed(
            f"{credential.name!r}: the OAuth2 client it was connected with was deleted; register the client "
            "again and reconnect"
        )
    # A renewal asks for the grant as it stands: no scopes in the request.
    return dataclasses.replace(oauth_client_config(session, vault, client), scopes=())


class TokenKeeper:
    def __init__(
        self,
        db: Database,
        vault: Callable[[], Vault],
        redis_client: redis.Redis,
        egress: EgressPolicy | None = None,
    ) -> None:
        self.db = db
        self._vault = vault
        self.redis = redis_client
        self.egress = egress or EgressPolicy()  # token URLs are the tenant's to set: no internal address

    def fresh(self, tenant_id: uuid.UUID, credential_id: uuid.UUID) -> dict[str, Any]:
        """The credential's values with an access token that is not due for renewal."""
        lock = self.redis.lock(
            _lock_key(tenant_id, credential_id), timeout=LOCK_TTL_S, blocking_timeout=WAIT_S, sleep=0.05
        )
        if not lock.acquire():
            raise TokenRefreshBusy(
                "the access token is being renewed by another worker for too long; retrying"
            )
        try:
            with _kept(lock):
                return self._renew_if_due(tenant_id, credential_id)
        finally:
            with contextlib.suppress(LockError):
                lock.release()

    def _renew_if_due(self, tenant_id: uuid.UUID, credential_id: uuid.UUID) -> dict[str, Any]:
        vault = self._vault()
        with tenant_session(self.db.sessions, tenant_id) as session:
            credential = session.get(Credential, credential_id)
            if credential is None:
                raise TokenRefreshFailed(f"credential {credential_id} was deleted")
            values = vault.reveal(session, credential)
            if not needs_renewal(credential.kind, values):
                return values  # renewed by whoever held the lock before us
            refused = (credential.meta or {}).get("refresh_refused")
            if refused:  # refused before: asking again on every step would not help
                raise TokenRefreshFailed(str(refused))
            config = client_config(session, vault, credential, values)
            name, kind = credential.name, credential.kind
        try:
            if kind == "oauth2_client":
                token = provider.client_credentials(
                    config, str(values.get("audience") or ""), egress=self.egress
                )
            elif values.get("refresh_token"):
                token = provider.refresh(config, str(values["refresh_token"]), egress=self.egress)
            else:
                raise ProviderRefused("the provider gave no refresh token")
        except ProviderRefused as exc:
            hidden = (*secret_strings(values), *secret_strings({"secret": config.client_secret}))
            reason = redact(
                f'The provider refused to renew the access token ({exc}); reconnect "{name}".', hidden
            )
            return self._refused(tenant_id, credential_id, values, reason)
        except ProviderUnreachable as exc:
            raise TokenRefreshBusy(f"{name!r}: renewing the access token failed for now: {exc}") from None
        renewed = provider.token_values(token, values)
        self._store(tenant_id, credential_id, renewed)
        return renewed

    def _refused(
        self, tenant_id: uuid.UUID, credential_id: uuid.UUID, sent: dict[str, Any], reason: str
    ) -> dict[str, Any]:
        """Keep the refusal on the credential, unless someone stored new tokens meanwhile (a holder whose lock
        lapsed): then those are the answer, and the refusal was of a token already replaced."""
        with tenant_session(self.db.sessions, tenant_id) as session:
            credential = session.get(Credential, credential_id, with_for_update=True)
            if credential is None:
                raise TokenRefreshFailed(reason)
            now = self._vault().reveal(session, credential)
            if now.get("refresh_token") != sent.get("refresh_token") or now.get("access_token") != sent.get(
                "access_token"
            ):
                return now
            credential.status, credential.status_reason = "error", reason
            credential.meta = {**(credential.meta or {}), "refresh_refused": reason}
            credential.updated_at = utcnow()
        raise TokenRefreshFailed(reason)

    def _store(self, tenant_id: uuid.UUID, credential_id: uuid.UUID, values: dict[str, Any]) -> None:
        with tenant_session(self.db.sessions, tenant_id) as session:
            credential = session.get(Credential, credential_id, with_for_update=True)
            if credential is None:
                return
            self._vault().replace_values(session, credential, values)
            meta = {k: v for k, v in (credential.meta or {}).items() if k != "refresh_refused"}
            credential.meta = {**meta, "expires_at": values.get("expires_at")}
            credential.status, credential.status_reason = "ok", None
            credential.updated_at = utcnow()


@contextlib.contextmanager
def _kept(lock: Lock) -> Iterator[None]:
    """Extend the lock while the token request runs: a slow provider must not let a second worker in with the
    refresh token this one is about to use up."""
    stop = threading.Event()

    def extend() -> None:
        while not stop.wait(LOCK_TTL_S / 3):
            with contextlib.suppress(LockError, redis.RedisError):
                lock.reacquire()

    keeper = threading.Thread(target=extend, name="oauth-lock", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        stop.set()
        keeper.join()


def needs_renewal(kind: str, values: dict[str, Any], now: float | None = None) -> bool:
    if kind not in TOKEN_KINDS:
        return False
    if kind == "oauth2_client" and not values.get("access_token"):
        return True  # the first use fetches the first token
    return expires_within(values, renewal_margin(values), time.time() if now is None else now)
