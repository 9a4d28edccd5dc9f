"""Declarative base and the tenant-ownership mixin every tenant row uses."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from app.storage.types import UTCDateTime, new_id, utcnow

# Stable constraint names so that migrations can drop/alter them identically on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict] = {dt.datetime: UTCDateTime(), uuid.UUID: sa.Uuid()}


class UuidPk:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)


class Timestamps:
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TenantOwned:
    """A row that belongs to exactly one tenant.

    Sessions bound to a tenant see and write only that tenant's rows (see app.storage.scoping).
    `tenant_shared = True` marks models whose rows may also be global (tenant_id NULL), readable by every
    tenant but writable only by the system scope.
    """

    tenant_shared: ClassVar[bool] = False

    @declared_attr
    def tenant_id(cls) -> Mapped[uuid.UUID]:
        return mapped_column(
            sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=cls.tenant_shared, index=False
        )
