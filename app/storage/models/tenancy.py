"""Tenants, users, memberships, invitations, API tokens and login sessions."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.storage.base import Base, TenantOwned, Timestamps, UuidPk
from app.storage.types import JSONType, utcnow


class Role(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    EDITOR = "editor"
    VIEWER = "viewer"


def _in(column: str, values: type[enum.StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class Tenant(UuidPk, Timestamps, Base):
    __tablename__ = "tenants"

    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    # Fair-share weight and quotas; NULL means "use the configured default".
    weight: Mapped[int] = mapped_column(default=1)
    max_concurrent_steps: Mapped[int | None]
    max_warm_runners: Mapped[int | None]
    max_runner_memory_mb: Mapped[int | None]
    max_backlog: Mapped[int | None]
    webhook_rps: Mapped[int | None]
    outbound_rps: Mapped[int | None]
    retention_days: Mapped[int | None]
    retention_runs: Mapped[int | None]

    __table_args__ = (sa.CheckConstraint("weight > 0", name="weight_positive"),)


class User(UuidPk, Base):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(200), default="")
    # NULL for users who only log in through single sign-on.
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    is_superuser: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)
    oidc_issuer: Mapped[str | None] = mapped_column(sa.String(500))
    oidc_subject: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[dt.datetime | None]

    __table_args__ = (sa.UniqueConstraint("oidc_issuer", "oidc_subject"),)


class Membership(UuidPk, TenantOwned, Base):
    __tablename__ = "memberships"

    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "user_id"),
        sa.CheckConstraint(_in("role", Role), name="role_known"),
    )


class ApiToken(UuidPk, TenantOwned, Base):
    __tablename__ = "api_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    # Only a SHA-256 of the token is kept; the prefix lets people recognise a token in lists.
    token_prefix: Mapped[str] = mapped_column(sa.String(16))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    scopes: Mapped[list] = mapped_column(JSONType, default=list)
    expires_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (sa.Index(None, "tenant_id", "user_id"),)


class Invitation(UuidPk, TenantOwned, Base):
    """A link that makes whoever opens it (or only `email`, when set) a member with `role`; used once."""

    __tablename__ = "invitations"

    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    role: Mapped[str] = mapped_column(sa.String(16))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    created_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    accepted_at: Mapped[dt.datetime | None]
    accepted_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    revoked_at: Mapped[dt.datetime | None]

    __table_args__ = (
        sa.CheckConstraint(_in("role", Role), name="role_known"),
        sa.Index(None, "tenant_id", "created_at"),
    )


class UserSession(UuidPk, Base):
    """A browser login. Kept in the database so that sessions survive a restart of the web process."""

    __tablename__ = "user_sessions"

    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # The tenant the user is currently working in; switching tenants updates it.
    current_tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("tenants.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]
    ip: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent: Mapped[str | None] = mapped_column(sa.String(500))
