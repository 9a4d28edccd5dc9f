"""Flows, their immutable versions, webhook endpoints and templates."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.storage.base import Base, TenantOwned, Timestamps, UuidPk
from app.storage.types import JSONType, utcnow


class FlowStatus(enum.StrEnum):
    INACTIVE = "inactive"
    STARTING = "starting"
    ACTIVE = "active"
    STOPPING = "stopping"
    ERROR = "error"


class Flow(UuidPk, TenantOwned, Timestamps, Base):
    __tablename__ = "flows"

    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    # The draft being edited: {"nodes": [...], "edges": [...]}; credentials only by id.
    graph: Mapped[dict] = mapped_column(JSONType, default=dict)
    trigger: Mapped[dict] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(sa.String(16), default=FlowStatus.INACTIVE.value)
    status_reason: Mapped[str | None] = mapped_column(sa.Text)
    # Optimistic lock: a save carries the version it read; a stale save is a conflict, never an overwrite.
    lock_version: Mapped[int] = mapped_column(default=1)
    current_version_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("flow_versions.id", ondelete="SET NULL", use_alter=True)
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))

    __mapper_args__ = {"version_id_col": lock_version}
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('inactive', 'starting', 'active', 'stopping', 'error')", name="status_known"
        ),
        sa.Index(None, "tenant_id", "updated_at"),
        sa.Index(None, "tenant_id", "name"),
    )


class FlowVersion(UuidPk, TenantOwned, Base):
    """An immutable snapshot; runs point at the version they ran."""

    __tablename__ = "flow_versions"

    flow_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("flows.id", ondelete="CASCADE"))
    number: Mapped[int]
    graph: Mapped[dict] = mapped_column(JSONType)
    trigger: Mapped[dict] = mapped_column(JSONType)
    # component name -> version the flow was saved with, so catalog updates never change a running flow.
    component_pins: Mapped[dict] = mapped_column(JSONType, default=dict)
    note: Mapped[str] = mapped_column(sa.Text, default="")
    created_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (sa.UniqueConstraint("flow_id", "number"),)


class WebhookKind(enum.StrEnum):
    PRODUCTION = "production"
    TEST = "test"


class Webhook(UuidPk, TenantOwned, Base):
    __tablename__ = "webhooks"

    flow_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("flows.id", ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(sa.String(128), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(16), default=WebhookKind.PRODUCTION.value)
    settings: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]

    __table_args__ = (sa.CheckConstraint("kind IN ('production', 'test')", name="kind_known"),)


class Template(UuidPk, TenantOwned, Timestamps, Base):
    """A flow without credentials (slots keep their types). tenant_id NULL: shipped with the hub."""

    __tablename__ = "templates"
    tenant_shared = True

    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    graph: Mapped[dict] = mapped_column(JSONType)
    trigger: Mapped[dict] = mapped_column(JSONType, default=dict)
    credential_slots: Mapped[list] = mapped_column(JSONType, default=list)
    created_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))

    __table_args__ = (sa.Index(None, "tenant_id", "name"),)
