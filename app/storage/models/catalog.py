"""Components of the catalog: a component.json-compatible descriptor plus how it runs."""

from __future__ import annotations

import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.storage.base import Base, TenantOwned, Timestamps, UuidPk
from app.storage.types import JSONType


class ComponentRuntime(enum.StrEnum):
    BUILTIN = "builtin"
    PYTHON = "python"
    NODEJS = "nodejs"  # an elastic.io / OIH Node.js component, run by the sailor-contract runner
    DOCKER = "docker"


class Component(UuidPk, TenantOwned, Timestamps, Base):
    """tenant_id NULL: a global component every tenant sees; otherwise private to that tenant."""

    __tablename__ = "components"
    tenant_shared = True

    name: Mapped[str] = mapped_column(sa.String(200))
    version: Mapped[str] = mapped_column(sa.String(100))
    title: Mapped[str] = mapped_column(sa.String(300))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    descriptor: Mapped[dict] = mapped_column(JSONType)
    runtime: Mapped[str] = mapped_column(sa.String(16))
    # Entry point ("package.module:function") or image reference ("repo/name:tag@digest").
    entry: Mapped[str] = mapped_column(sa.String(500), default="")
    icon: Mapped[str | None] = mapped_column(sa.String(300))
    deprecated: Mapped[bool] = mapped_column(default=False)

    __table_args__ = (
        sa.CheckConstraint("runtime IN ('builtin', 'python', 'nodejs', 'docker')", name="runtime_known"),
        sa.UniqueConstraint("tenant_id", "name", "version"),
        # NULLs are distinct in a unique constraint, so global components need their own partial index.
        sa.Index(
            "uq_components_global_name_version",
            "name",
            "version",
            unique=True,
            postgresql_where=sa.text("tenant_id IS NULL"),
            sqlite_where=sa.text("tenant_id IS NULL"),
        ),
    )
