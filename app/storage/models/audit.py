"""The audit log: who did what, when, to which object."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.storage.base import Base, TenantOwned
from app.storage.types import BigIntId, JSONType, utcnow


class AuditEvent(TenantOwned, Base):
    """tenant_id NULL for events outside any tenant (a failed login, a user created by the CLI)."""

    __tablename__ = "audit_events"
    tenant_shared = True

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    ts: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(sa.String(100))
    target_type: Mapped[str | None] = mapped_column(sa.String(50))
    target_id: Mapped[str | None] = mapped_column(sa.String(100))
    details: Mapped[dict] = mapped_column(JSONType, default=dict)
    ip: Mapped[str | None] = mapped_column(sa.String(64))

    __table_args__ = (sa.Index(None, "tenant_id", "ts"), sa.Index(None, "action", "ts"))
