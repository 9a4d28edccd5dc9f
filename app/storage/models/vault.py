"""Credentials (ciphertext and non-secret metadata only) and the per-tenant wrapped data keys."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.storage.base import Base, TenantOwned, Timestamps, UuidPk
from app.storage.types import JSONType, utcnow


class CredentialKind(enum.StrEnum):
    FIELDS = "fields"
    API_KEY = "api_key"
    BASIC = "basic"
    BEARER = "bearer"
    OAUTH2_CODE = "oauth2_code"
    OAUTH2_CLIENT = "oauth2_client"


class Credential(UuidPk, TenantOwned, Timestamps, Base):
    __tablename__ = "credentials"

    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(32))
    component_name: Mapped[str | None] = mapped_column(sa.String(200))
    # NULL: shared with the tenant; otherwise personal to that member.
    owner_user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    # AES-256-GCM blob (nonce + ciphertext + tag) under the tenant data key named by data_key_id.
    ciphertext: Mapped[bytes] = mapped_column(sa.LargeBinary)
    data_key_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenant_keys.id", ondelete="RESTRICT"))
    # Never secret: account name, scopes, token expiry, field names.
    meta: Mapped[dict] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(sa.String(32), default="ok")
    status_reason: Mapped[str | None] = mapped_column(sa.Text)
    last_used_at: Mapped[dt.datetime | None]
    created_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))

    __table_args__ = (
        sa.CheckConstraint(
            "kind IN ('fields', 'api_key', 'basic', 'bearer', 'oauth2_code', 'oauth2_client', 'registry')",
            name="kind_known",
        ),
        sa.Index(None, "tenant_id", "name"),
    )


class TenantKey(UuidPk, TenantOwned, Base):
    """A tenant's data key, wrapped (encrypted) by a master key of the configured key ring."""

    __tablename__ = "tenant_keys"

    wrapped_key: Mapped[bytes] = mapped_column(sa.LargeBinary)
    master_key_id: Mapped[str] = mapped_column(sa.String(64))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (sa.Index(None, "tenant_id", "active"),)


class OAuthClient(UuidPk, TenantOwned, Timestamps, Base):
    """An OAuth2 application the tenant registered with a provider: what "Connect" signs in with. The client
    secret is sealed like a credential's values (under the tenant's data key, bound to this row)."""

    __tablename__ = "oauth_clients"

    name: Mapped[str] = mapped_column(sa.String(200))
    # Endpoints and scopes came from this component's descriptor (its credentials.oauth2 block), if any.
    component_name: Mapped[str | None] = mapped_column(sa.String(200))
    client_id: Mapped[str] = mapped_column(sa.String(500))
    authorize_url: Mapped[str] = mapped_column(sa.String(2000))
    token_url: Mapped[str] = mapped_column(sa.String(2000))
    userinfo_url: Mapped[str | None] = mapped_column(sa.String(2000))
    scopes: Mapped[list] = mapped_column(JSONType, default=list)
    pkce: Mapped[bool] = mapped_column(default=True)
    # Extra parameters of the authorization request, e.g. access_type=offline for Google.
    extra_params: Mapped[dict] = mapped_column(JSONType, default=dict)
    secret_ciphertext: Mapped[bytes] = mapped_column(sa.LargeBinary)
    data_key_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenant_keys.id", ondelete="RESTRICT"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))

    __table_args__ = (sa.UniqueConstraint("tenant_id", "name"),)
