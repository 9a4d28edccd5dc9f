"""The vault as the webhook routers see it: a route's protection secret, decrypted on a cache miss only (the
router keeps it with the route until the route changes)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from app.runtime_ids import database_id
from app.storage.db import Database
from app.storage.models import Credential
from app.storage.scoping import tenant_session
from app.vault.store import Vault


class VaultSecrets:
    def __init__(self, db: Database, vault: Callable[[], Vault]) -> None:
        self.db = db
        self._vault = vault  # opened on first use: a hub without protected webhooks needs no key ring here

    def values_now(self, tenant: str, ref: str) -> dict[str, str]:
        """Raises LookupError when the credential is gone (or not this tenant's), VaultError when it cannot open."""
        try:
            credential_id = uuid.UUID(ref)
        except ValueError:
            raise LookupError(f"credential {ref!r} is not a credential id") from None
        with tenant_session(self.db.sessions, database_id(tenant)) as session:
            credential = session.get(Credential, credential_id)
            if credential is None:
                raise LookupError(f"credential {ref} is gone")
            return {key: str(value) for key, value in self._vault().reveal(session, credential).items()}

    async def values(self, tenant: str, ref: str) -> dict[str, str]:
        return await asyncio.to_thread(self.values_now, tenant, ref)
