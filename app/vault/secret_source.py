"""The vault as the runtime sees it: webhook routers (`values`, async) and workers (`credential_values`) get a
credential's values by id, decrypted on a cache miss only; they keep them briefly in memory. An OAuth2 credential
comes with an access token renewed ahead of its expiry (app.oauth.tokens)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from app.oauth.tokens import TokenKeeper, TokenRefreshFailed, needs_renewal
from app.runtime_ids import database_id
from app.storage.db import Database
from app.storage.models import Credential, Membership
from app.storage.scoping import tenant_session
from app.storage.types import utcnow
from app.vault.store import MasterKeyMissing, Vault, VaultError
from runtime.steps.credentials import CredentialUnavailable

LAST_USED_EVERY = dt.timedelta(minutes=5)  # "last used" on the Credentials page, without a write per step


class VaultSecrets:
    def __init__(self, db: Database, vault: Callable[[], Vault], tokens: TokenKeeper | None = None) -> None:
        self.db = db
        self._vault = vault  # opened on first use: a hub without credentials in use needs no key ring here
        self.tokens = tokens

    def values_now(self, tenant: str, ref: str) -> dict[str, Any]:
        """Raises LookupError when the credential cannot be used here, VaultError when it cannot be opened."""
        try:
            credential_id = uuid.UUID(ref)
            tenant_id = database_id(tenant)
        except ValueError:
            raise LookupError(f"credential {ref!r} is not a credential id") from None
        with tenant_session(self.db.sessions, tenant_id) as session:
            credential = session.get(Credential, credential_id)
            if credential is None:
                raise LookupError(f"credential {ref} does not exist (deleted, or another tenant's)")
            if credential.owner_user_id is not None and not session.scalar(
                sa.select(Membership.id).where(Membership.user_id == credential.owner_user_id).limit(1)
            ):
                raise LookupError(
                    f"credential {credential.name!r} is personal to a member who left this tenant; "
                    "choose a shared credential"
                )
            values = self._vault().reveal(session, credential)
            now = utcnow()
            if credential.last_used_at is None or now - credential.last_used_at > LAST_USED_EVERY:
                credential.last_used_at = now
            kind = credential.kind
        if needs_renewal(kind, values):
            if self.tokens is None:
                raise LookupError(
                    f"credential {ref}: its access token is due for renewal and this process cannot"
                )
            values = self.tokens.fresh(tenant_id, credential_id)
        return {**values, "kind": kind}  # a field cannot shadow it

    async def values(self, tenant: str, ref: str) -> dict[str, str]:
        """For webhook protection: the secret's fields as strings."""
        found = await asyncio.to_thread(self.values_now, tenant, ref)
        return {key: str(value) for key, value in found.items() if key != "kind"}

    def credential_values(self, tenant: str, credential_id: str) -> dict[str, Any]:
        """For a step (the runtime's CredentialSource)."""
        try:
            return self.values_now(tenant, credential_id)
        except MasterKeyMissing:
            raise  # this process's key ring is behind: the step is retried until it is restarted with the new one
        except (LookupError, VaultError, TokenRefreshFailed) as exc:
            raise CredentialUnavailable(str(exc)) from None
