"""Run records: runs, step executions and log lines, written by the run recorder."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.storage.base import Base, TenantOwned, UuidPk
from app.storage.types import BigIntId, JSONType, utcnow


class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIALLY_FAILED = "partially_failed"
    CANCELLED = "cancelled"


class Run(UuidPk, TenantOwned, Base):
    __tablename__ = "runs"

    flow_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("flows.id", ondelete="CASCADE"))
    flow_version_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("flow_versions.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(sa.String(20), default=RunStatus.QUEUED.value)
    trigger_kind: Mapped[str] = mapped_column(sa.String(20), default="manual")
    test_mode: Mapped[bool] = mapped_column(default=False)
    replay_of_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("runs.id", ondelete="SET NULL"))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    error: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'partially_failed', 'cancelled')",
            name="status_known",
        ),
        # Keyset pagination of the runs lists: (started_at, id) per tenant and per flow.
        sa.Index(None, "tenant_id", "started_at", "id"),
        sa.Index(None, "tenant_id", "flow_id", "started_at", "id"),
        sa.Index(None, "tenant_id", "status", "started_at"),
        sa.Index(None, "replay_of_id"),
        # A version's first run (the audit of the credentials it uses) and the FK's SET NULL on version deletion.
        sa.Index(None, "flow_version_id"),
    )


class StepExecution(UuidPk, TenantOwned, Base):
    __tablename__ = "step_executions"

    run_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("runs.id", ondelete="CASCADE"))
    step_id: Mapped[str] = mapped_column(sa.String(100))
    component: Mapped[str] = mapped_column(sa.String(200))
    function: Mapped[str] = mapped_column(sa.String(200))
    attempt: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(sa.String(20))
    executor: Mapped[str] = mapped_column(sa.String(20), default="inline")
    instance: Mapped[str | None] = mapped_column(sa.String(100))  # the container or process it ran in
    message_id: Mapped[str | None] = mapped_column(sa.String(100))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    duration_ms: Mapped[float | None]
    input: Mapped[dict | None] = mapped_column(JSONType)
    output: Mapped[dict | None] = mapped_column(JSONType)
    truncated: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (sa.Index(None, "run_id", "started_at"),)


class RunLogLine(TenantOwned, Base):
    __tablename__ = "run_log_lines"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    run_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("runs.id", ondelete="CASCADE"))
    step_id: Mapped[str | None] = mapped_column(sa.String(100))
    ts: Mapped[dt.datetime] = mapped_column(default=utcnow)
    level: Mapped[str] = mapped_column(sa.String(10), default="info")
    message: Mapped[str] = mapped_column(sa.Text)

    # Logs of a run in order: id is monotonic, so (run_id, id) is the reading order.
    __table_args__ = (sa.Index(None, "run_id", "id"),)
