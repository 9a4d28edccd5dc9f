"""oauth clients

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 02:57:05.373322
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.storage.types

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oauth_clients",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("component_name", sa.String(length=200), nullable=True),
        sa.Column("client_id", sa.String(length=500), nullable=False),
        sa.Column("authorize_url", sa.String(length=2000), nullable=False),
        sa.Column("token_url", sa.String(length=2000), nullable=False),
        sa.Column("userinfo_url", sa.String(length=2000), nullable=True),
        sa.Column("scopes", app.storage.types.JSONType, nullable=False),
        sa.Column("pkce", sa.Boolean(), nullable=False),
        sa.Column("extra_params", app.storage.types.JSONType, nullable=False),
        sa.Column("secret_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("data_key_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", app.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_oauth_clients_created_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["data_key_id"],
            ["tenant_keys.id"],
            name=op.f("fk_oauth_clients_data_key_id_tenant_keys"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_oauth_clients_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_clients")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_oauth_clients_tenant_id_name")),
    )


def downgrade() -> None:
    op.drop_table("oauth_clients")
