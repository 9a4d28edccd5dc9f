"""Run history: the runner (container or process) a step ran in, and replays found from their original

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 07:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("step_executions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("instance", sa.String(length=100), nullable=True))
    # The replays of a run are listed on its page, and deleting runs sets their replays' link to NULL: both
    # need the link indexed, or each deleted run scans the table.
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_runs_replay_of_id"), ["replay_of_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_replay_of_id"))
    with op.batch_alter_table("step_executions", schema=None) as batch_op:
        batch_op.drop_column("instance")
