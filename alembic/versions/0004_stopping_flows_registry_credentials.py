"""Flows may be "stopping" (deactivation is a control job: the URL closes before the runners stop), and
credentials may be container-registry logins (pull credentials of component images)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 10:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("flows", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_flows_status_known"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_flows_status_known"),
            "status IN ('inactive', 'starting', 'active', 'stopping', 'error')",
        )

    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_credentials_kind_known"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_credentials_kind_known"),
            "kind IN ('fields', 'api_key', 'basic', 'bearer', 'oauth2_code', 'oauth2_client', 'registry')",
        )


def downgrade() -> None:
    op.execute("DELETE FROM credentials WHERE kind = 'registry'")
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_credentials_kind_known"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_credentials_kind_known"),
            "kind IN ('fields', 'api_key', 'basic', 'bearer', 'oauth2_code', 'oauth2_client')",
        )
    op.execute("UPDATE flows SET status = 'inactive' WHERE status = 'stopping'")
    with op.batch_alter_table("flows", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_flows_status_known"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_flows_status_known"), "status IN ('inactive', 'starting', 'active', 'error')"
        )
