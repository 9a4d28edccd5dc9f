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
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis
from redis.exceptions import LockError
from sqlalchemy.orm import Session

from app.oauth import provider
from app.oauth.provider import ClientConfig, ProviderRefused, ProviderUnreachable
from app.storage.db import Database
from app.storage.models import Credential, OAuthClient
from app.storage.scoping import tenant_session
from app.storage.types import utcnow
from app.vault.store import Vault
from runtime.steps.credentials import REFRESH_AHEAD_S, expires_within

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
    return ClientConfig(
        client_id=client.client_id,
        client_secret=vault.client_secret(session, client),
        token_url=client.token_url,
        userinfo_url=client.userinfo_url or "",
    )


class TokenKeeper:
    def __init__(self, db: Database, vault: Callable[[], Vault], redis_client: redis.Redis) -> None:
        self.db = db
        self._vault = vault
        self.redis = redis_client

    def fresh(self, tenant_id: uuid.UUID, credential_id: uuid.UUID) -> dict[str, Any]:
        """The credential's values with an access token good for at least REFRESH_AHEAD_S more seconds."""
        lock = self.redis.lock(
            _lock_key(tenant_id, credential_id), timeout=LOCK_TTL_S, blocking_timeout=WAIT_S, sleep=0.05
        )
        if not lock.acquire():
            raise TokenRefreshBusy(
                "the access token is being renewed by another worker for too long; retrying"
            )
        try:
            return self._renew_if_due(tenant_id, credential_id)
        finally:
            # It may have expired meanwhile; whoever took it over re-reads before renewing.
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
            if credential.status == "error":  # refused before: asking again on every step would not help
                raise TokenRefreshFailed(
                    credential.status_reason or f"{credential.name!r} must be reconnected"
                )
            config = client_config(session, vault, credential, values)
            name = credential.name
        try:
            if credential.kind == "oauth2_client":
                token = provider.client_credentials(config, str(values.get("audience") or ""))
            elif values.get("refresh_token"):
                token = provider.refresh(config, str(values["refresh_token"]))
            else:
                raise ProviderRefused("the provider gave no refresh token")
        except ProviderRefused as exc:
            reason = f'The provider refused to renew the access token ({exc}); reconnect "{name}".'
            self._store(tenant_id, credential_id, None, status=("error", reason))
            raise TokenRefreshFailed(reason) from None
        except ProviderUnreachable as exc:
            raise TokenRefreshBusy(f"{name!r}: renewing the access token failed for now: {exc}") from None
        renewed = provider.token_values(token, values)
        self._store(tenant_id, credential_id, renewed)
        return renewed

    def _store(
        self,
        tenant_id: uuid.UUID,
        credential_id: uuid.UUID,
        values: dict[str, Any] | None,
        status: tuple[str, str | None] = ("ok", None),
    ) -> None:
        with tenant_session(self.db.sessions, tenant_id) as session:
            credential = session.get(Credential, credential_id, with_for_update=True)
            if credential is None:
                return
            if values is not None:
                self._vault().replace_values(session, credential, values)
                credential.meta = {**(credential.meta or {}), "expires_at": values.get("expires_at")}
            credential.status, credential.status_reason = status
            credential.updated_at = utcnow()


def needs_renewal(kind: str, values: dict[str, Any], now: float | None = None) -> bool:
    if kind not in TOKEN_KINDS:
        return False
    if kind == "oauth2_client" and not values.get("access_token"):
        return True  # the first use fetches the first token
    return expires_within(values, REFRESH_AHEAD_S, time.time() if now is None else now)
