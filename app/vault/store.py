"""Where credentials are encrypted and decrypted: values in, ciphertext in the row; ciphertext out, values.

Each tenant has an active data key, stored wrapped by the first key of the master key ring; any key of the ring
opens it (so the ring can be rotated). Values never leave this module except to the caller that asked."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.config import MasterKey
from app.errors import HubError
from app.storage.db import Database
from app.storage.models import Credential, OAuthClient, TenantKey
from app.storage.scoping import system_session
from app.storage.types import utcnow
from app.vault import crypto


class VaultError(HubError):
    """A credential cannot be stored or opened; the message says which and why, never its values."""


class MasterKeyMissing(VaultError):
    """The key that wraps a data key is not in this process's key ring (a rotation in progress, or a process not
    restarted with the new ring): a configuration matter, not a broken credential."""


@dataclass
class RewrapReport:
    rewrapped: int = 0
    problems: list[str] = field(default_factory=list)
    failed_ids: list[uuid.UUID] = field(default_factory=list)


class Vault:
    def __init__(self, key_ring: list[MasterKey]) -> None:
        if not key_ring:
            raise VaultError("the master key ring is empty: set HUB_SECRET_KEYS")
        self._ring = {key.key_id: key.key for key in key_ring}
        self._primary = key_ring[0]

    # -- data keys ----------------------------------------------------------------------------------------
    def _unwrap(self, row: TenantKey) -> bytes:
        master = self._ring.get(row.master_key_id)
        if master is None:
            raise MasterKeyMissing(
                f"the tenant's data key is wrapped by master key {row.master_key_id!r}, which is not in "
                "HUB_SECRET_KEYS; add it back to the key ring"
            )
        try:
            return crypto.open_sealed(master, row.wrapped_key, crypto.data_key_context(row.tenant_id, row.id))
        except crypto.DecryptionError:
            raise VaultError(
                f"master key {row.master_key_id!r} does not open the tenant's data key (a different key "
                "under the same id?)"
            ) from None

    def _active_key(self, session: Session, tenant_id: uuid.UUID) -> tuple[TenantKey, bytes]:
        row = session.scalar(
            sa.select(TenantKey).where(TenantKey.tenant_id == tenant_id, TenantKey.active.is_(True)).limit(1)
        )
        if row is None:
            row = TenantKey(
                id=uuid.uuid4(), tenant_id=tenant_id, master_key_id=self._primary.key_id, active=True
            )
            key = crypto.new_data_key()
            row.wrapped_key = crypto.seal(self._primary.key, key, crypto.data_key_context(tenant_id, row.id))
            session.add(row)
            session.flush()
            return row, key
        return row, self._unwrap(row)

    def rewrap_all(self, db: Database, batch: int = 200) -> RewrapReport:
        """Re-wrap every tenant data key under the first master key (`hub keys rotate`). Safe while the hub runs:
        each row changes atomically, and every key of the ring still opens either wrapping. Credentials keep
        their ciphertext: only the data keys' wrapping changes."""
        report = RewrapReport()
        after: uuid.UUID | None = None
        while True:
            with system_session(db.sessions) as session:
                query = sa.select(TenantKey).where(TenantKey.master_key_id != self._primary.key_id)
                if after is not None:  # keyset paging: rows that failed are not read again
                    query = query.where(TenantKey.id > after)
                rows = session.scalars(query.order_by(TenantKey.id).limit(batch)).all()
                if not rows:
                    return report
                after = rows[-1].id
                for row in rows:
                    try:
                        key = self._unwrap(row)
                    except VaultError as exc:
                        report.failed_ids.append(row.id)
                        report.problems.append(f"tenant key {row.id} of tenant {row.tenant_id}: {exc}")
                        continue
                    row.wrapped_key = crypto.seal(
                        self._primary.key, key, crypto.data_key_context(row.tenant_id, row.id)
                    )
                    row.master_key_id = self._primary.key_id
                    report.rewrapped += 1

    def _seal(
        self, session: Session, tenant_id: uuid.UUID, payload: bytes, context: bytes
    ) -> tuple[uuid.UUID, bytes]:
        key_row, key = self._active_key(session, tenant_id)
        return key_row.id, crypto.seal(key, payload, context)

    def _open(
        self,
        session: Session,
        tenant_id: uuid.UUID,
        data_key_id: uuid.UUID,
        blob: bytes,
        context: bytes,
        what: str,
    ) -> bytes:
        key_row = session.get(TenantKey, data_key_id)
        if key_row is None or key_row.tenant_id != tenant_id:
            raise VaultError(f"{what}: its data key is missing")
        key = self._unwrap(key_row)
        try:
            return crypto.open_sealed(key, blob, context)
        except crypto.DecryptionError:
            raise VaultError(
                f"{what} does not decrypt here (copied from another row or tenant, or tampered with); "
                "enter its values again"
            ) from None

    # -- credentials ----------------------------------------------------------------------------------------
    def store(
        self,
        session: Session,
        tenant_id: uuid.UUID,
        *,
        name: str,
        kind: str,
        values: dict[str, Any],
        component_name: str | None = None,
        owner_user_id: uuid.UUID | None = None,
        meta: dict[str, Any] | None = None,
        created_by: uuid.UUID | None = None,
    ) -> Credential:
        credential = Credential(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            name=name,
            kind=kind,
            component_name=component_name,
            owner_user_id=owner_user_id,
            meta=meta or {},
            created_by=created_by,
        )
        self.replace_values(session, credential, values)
        session.add(credential)
        session.flush()
        return credential

    def replace_values(self, session: Session, credential: Credential, values: dict[str, Any]) -> None:
        credential.data_key_id, credential.ciphertext = self._seal(
            session,
            credential.tenant_id,
            orjson.dumps(values),
            crypto.credential_context(credential.tenant_id, credential.id),
        )
        credential.updated_at = utcnow()

    def reveal(self, session: Session, credential: Credential) -> dict[str, Any]:
        plain = self._open(
            session,
            credential.tenant_id,
            credential.data_key_id,
            credential.ciphertext,
            crypto.credential_context(credential.tenant_id, credential.id),
            f"credential {credential.name!r}",
        )
        return orjson.loads(plain)

    # -- OAuth2 client secrets ------------------------------------------------------------------------------
    def seal_client_secret(self, session: Session, client: OAuthClient, secret: str) -> None:
        client.data_key_id, client.secret_ciphertext = self._seal(
            session,
            client.tenant_id,
            secret.encode(),
            crypto.oauth_client_context(client.tenant_id, client.id),
        )

    def client_secret(self, session: Session, client: OAuthClient) -> str:
        return self._open(
            session,
            client.tenant_id,
            client.data_key_id,
            client.secret_ciphertext,
            crypto.oauth_client_context(client.tenant_id, client.id),
            f"the client secret of OAuth2 client {client.name!r}",
        ).decode()
