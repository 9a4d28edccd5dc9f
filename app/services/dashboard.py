"""The figures of a tenant's home page over the last 24 hours: runs per hour by status, error rate, duration
percentiles per flow, and the flows that failed most."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa

from app.services.run_history import FAILED, failed_counts
from app.storage.db import Database
from app.storage.models import Flow, Run
from app.storage.scoping import tenant_session

HOURS = 24
DURATION_SAMPLE = 20_000  # percentiles come from the newest runs of the window, at most this many


@dataclass(frozen=True)
class HourFigures:
    hour: str  # "HH:00", UTC
    succeeded: int
    failed: int  # failed and partly failed
    other: int  # queued, running, cancelled
    error_rate: float  # failed / finished, in percent


@dataclass(frozen=True)
class FlowDuration:
    flow_id: uuid.UUID
    name: str
    runs: int
    p50_ms: float
    p95_ms: float


@dataclass(frozen=True)
class FailingFlow:
    flow_id: uuid.UUID
    name: str
    failed: int


@dataclass(frozen=True)
class Dashboard:
    hours: list[HourFigures]
    runs: int
    failed: int
    error_rate: float
    durations: list[FlowDuration]
    failing: list[FailingFlow]


def _hour(column: sa.ColumnElement, dialect: str) -> sa.ColumnElement:
    """The start of the hour of a timestamp, as the database computes it (grouped there, not in Python)."""
    if dialect == "postgresql":
        # In UTC whatever the session's time zone: date_trunc on a timestamptz cuts in the session's zone,
        # and a half-hour zone would shift every bucket.
        return sa.func.date_trunc("hour", sa.func.timezone("UTC", column))
    return sa.func.strftime("%Y-%m-%d %H:00:00", column)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted `values` (empty: 0)."""
    if not values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(values)))
    return values[rank - 1]


def dashboard(db: Database, tenant_id: uuid.UUID, now: dt.datetime | None = None) -> Dashboard:
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    end = now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    since = end - dt.timedelta(hours=HOURS)
    dialect = db.engine.dialect.name
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    with tenant_session(db.sessions, tenant_id) as session:
        hour = _hour(Run.started_at, dialect).label("hour")
        rows = session.execute(
            sa.select(hour, Run.status, sa.func.count(Run.id))
            .where(Run.started_at >= since, Run.test_mode.is_(False))
            .group_by(hour, Run.status)
        ).all()
        for bucket, status, count in rows:
            # SQLite gives the text; PostgreSQL a timestamp in UTC wall time (no zone).
            key = bucket if isinstance(bucket, str) else bucket.strftime("%Y-%m-%d %H:00:00")
            counts[key][status] += count
        finished = session.execute(
            sa.select(Run.flow_id, Run.started_at, Run.finished_at)
            .where(Run.started_at >= since, Run.finished_at.is_not(None), Run.test_mode.is_(False))
            .order_by(Run.started_at.desc())
            .limit(DURATION_SAMPLE)
        ).all()
        names = dict(session.execute(sa.select(Flow.id, Flow.name)).all())
    hours = []
    for i in range(HOURS):
        start = since + dt.timedelta(hours=i)
        by_status = counts.get(start.strftime("%Y-%m-%d %H:00:00"), {})
        failed = sum(by_status.get(s, 0) for s in FAILED)
        succeeded = by_status.get("succeeded", 0)
        other = sum(by_status.values()) - failed - succeeded
        done = failed + succeeded
        hours.append(HourFigures(start.strftime("%H:00"), succeeded, failed, other,
                                 round(100 * failed / done, 1) if done else 0.0))  # fmt: skip
    total_failed = sum(h.failed for h in hours)
    total_done = total_failed + sum(h.succeeded for h in hours)
    return Dashboard(
        hours=hours,
        runs=sum(h.succeeded + h.failed + h.other for h in hours),
        failed=total_failed,
        error_rate=round(100 * total_failed / total_done, 1) if total_done else 0.0,
        durations=_durations(finished, names),
        failing=[FailingFlow(flow_id, names.get(flow_id, "(deleted flow)"), count)
                 for flow_id, count in sorted(failed_counts(db, tenant_id, since).items(), key=lambda kv: -kv[1])[:5]],
    )  # fmt: skip


def _durations(rows: list, names: dict[uuid.UUID, str]) -> list[FlowDuration]:
    by_flow: dict[uuid.UUID, list[float]] = defaultdict(list)
    for flow_id, started, finished in rows:
        by_flow[flow_id].append(max(0.0, (finished - started).total_seconds() * 1000))
    found = []
    for flow_id, values in by_flow.items():
        values.sort()
        found.append(FlowDuration(flow_id, names.get(flow_id, "(deleted flow)"), len(values),
                                  percentile(values, 0.5), percentile(values, 0.95)))  # fmt: skip
    return sorted(found, key=lambda d: -d.p95_ms)[:10]
