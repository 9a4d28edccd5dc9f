"""Node.js components (elastic.io / OIH, run by the sailor-contract runner)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 04:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("components", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_components_runtime_known"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_components_runtime_known"), "runtime IN ('builtin', 'python', 'nodejs', 'docker')"
        )


def downgrade() -> None:
    op.execute("UPDATE components SET runtime = 'docker' WHERE runtime = 'nodejs'")
    with op.batch_alter_table("components", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_components_runtime_known"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_components_runtime_known"), "runtime IN ('builtin', 'python', 'docker')"
        )
