"""The retention job (hourly, an rq-scheduler interval job): deletes the runs past each tenant's retention,
with their step executions and log lines, in batches, then gives the space back.

Batches of a thousand runs, each its own short transaction, children first (each by its run index), so that
no statement holds locks for long and PostgreSQL's autovacuum keeps up; the job then VACUUMs the three tables
so the space is reusable at once. SQLite files shrink: new databases use incremental auto-vacuum (an older
file keeps its size and reuses the space; docs/runs.md says how to convert it). Runs still queued or running
are never deleted, whatever their age."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
import uuid
from typing import Any

import redis
import sqlalchemy as sa
from rq_scheduler import Scheduler
from sqlalchemy.orm import Session

from app.control.context import current
from app.recorder.events import FINISHED
from app.runtime_ids import runtime_id
from app.services.retention import (
    RetentionPolicy,
    RetentionReport,
    TenantFreed,
    policy_of,
    save_report,
)
from app.storage.db import Database
from app.storage.models import Run, RunLogLine, StepExecution, Tenant
from app.storage.scoping import system_session
from app.storage.types import utcnow
from runtime.bus.keys import TenantKeys
from runtime.control import CONTROL_QUEUE

log = logging.getLogger("hub.retention")
JOB_ID = "hub-retention"
INTERVAL_S = 3600
BATCH = 1000


def install(scheduler: Scheduler) -> None:
    """Register the job (once, whatever the number of schedulers: the job id is fixed)."""
    scheduler.cancel(JOB_ID)
    scheduler.schedule(scheduled_time=dt.datetime.now(dt.UTC).replace(tzinfo=None), func=run_retention,
                       interval=INTERVAL_S, repeat=None, id=JOB_ID, queue_name=CONTROL_QUEUE,
                       result_ttl=INTERVAL_S, timeout=INTERVAL_S)  # fmt: skip


def run_retention() -> dict[str, Any]:
    ctx = current()
    report = apply_retention(ctx.db, ctx.retention, client=ctx.bus.redis)
    save_report(ctx.bus.redis, report)
    return dataclasses.asdict(report)


def apply_retention(
    db: Database,
    default: RetentionPolicy,
    *,
    now: dt.datetime | None = None,
    batch: int = BATCH,
    client: redis.Redis | None = None,
) -> RetentionReport:
    """With `client`, dead letters older than a tenant's retention days go too (they keep whole messages)."""
    now = now or utcnow()
    started = time.perf_counter()
    report = RetentionReport(started_at=now.isoformat(), database=db.engine.dialect.name)
    with system_session(db.sessions) as session:
        policies = [(t.id, policy_of(t, default)) for t in session.scalars(sa.select(Tenant))]
    size_before = _sqlite_size(db)
    for tenant_id, policy in policies:
        freed, row_bytes = _apply(db, tenant_id, policy, now, batch)
        report.bytes_freed += row_bytes  # 0 on SQLite: there the file's shrinking is measured below
        if client is not None and policy.days:
            freed.dead_letters = _trim_dead_letters(client, tenant_id, now - dt.timedelta(days=policy.days))
            report.dead_letters += freed.dead_letters
        if freed.runs or freed.dead_letters:
            report.tenants[runtime_id(tenant_id)] = freed
            report.runs += freed.runs
            report.steps += freed.steps
            report.logs += freed.logs
    if report.runs:
        _reclaim(db)
        if size_before is not None:
            report.bytes_freed = max(0, size_before - (_sqlite_size(db) or 0))
    report.seconds = round(time.perf_counter() - started, 3)
    if report.runs or report.dead_letters:
        log.info("retention: deleted %d runs, %d step executions, %d log lines, %d dead letters; %d bytes freed "
                 "in %.1f s", report.runs, report.steps, report.logs, report.dead_letters, report.bytes_freed,
                 report.seconds)  # fmt: skip
    return report


def _trim_dead_letters(client: redis.Redis, tenant_id: uuid.UUID, before: dt.datetime) -> int:
    """Stream ids are times: everything before the cutoff goes in one command."""
    try:
        return int(
            client.xtrim(
                TenantKeys(runtime_id(tenant_id)).dead,
                minid=int(before.timestamp() * 1000),
                approximate=False,
            )
        )
    except redis.RedisError as exc:  # the runs are deleted: the dead letters wait for the next hour
        log.warning("retention: dead letters of %s not trimmed: %s", tenant_id, exc)
        return 0


def _expired(session: Session, tenant_id: uuid.UUID, policy: RetentionPolicy, now: dt.datetime) -> Any:
    """The condition of the tenant's runs past its retention; None when it keeps everything."""
    past = []
    if policy.days:
        past.append(Run.started_at < now - dt.timedelta(days=policy.days))
    if policy.runs:
        # The oldest run kept: every run older than it (by start, then id) is past the limit.
        oldest_kept = session.execute(
            sa.select(Run.started_at, Run.id)
            .where(Run.tenant_id == tenant_id)
            .order_by(Run.started_at.desc(), Run.id.desc())
            .offset(policy.runs - 1)
            .limit(1)
        ).first()
        if oldest_kept is not None:
            past.append(sa.tuple_(Run.started_at, Run.id) < sa.tuple_(oldest_kept.started_at, oldest_kept.id))
    if not past:
        return None
    return sa.and_(Run.tenant_id == tenant_id, Run.status.in_(FINISHED), sa.or_(*past))


def _apply(
    db: Database,
    tenant_id: uuid.UUID,
    policy: RetentionPolicy,
    now: dt.datetime,
    batch: int,
) -> tuple[TenantFreed, int]:
    """What was deleted of the tenant's runs, and the bytes those rows took (PostgreSQL only)."""
    freed, row_bytes = TenantFreed(), 0
    with system_session(db.sessions) as session:
        where = _expired(session, tenant_id, policy, now)
    if where is None:
        return freed, row_bytes
    while True:
        with system_session(db.sessions) as session:
            ids = list(session.scalars(sa.select(Run.id).where(where).order_by(Run.started_at).limit(batch)))
            if not ids:
                return freed, row_bytes
            logs, log_bytes = _delete(session, RunLogLine, ids, RunLogLine.run_id)
            steps, step_bytes = _delete(session, StepExecution, ids, StepExecution.run_id)
            runs, run_bytes = _delete(session, Run, ids, Run.id)
        freed.runs += runs
        freed.steps += steps
        freed.logs += logs
        row_bytes += log_bytes + step_bytes + run_bytes


def _delete(session: Session, model: Any, ids: list[uuid.UUID], column: Any) -> tuple[int, int]:
    """Delete the rows whose `column` is one of `ids`; returns (rows, bytes). PostgreSQL says how large the
    rows were (what VACUUM makes reusable); elsewhere bytes is 0 and the file's shrinking is measured."""
    if session.get_bind().dialect.name == "postgresql":
        table = model.__table__.name
        found = session.execute(
            sa.text(f"WITH gone AS (DELETE FROM {table} WHERE {column.key} = ANY(:ids) "  # noqa: S608  # our names
                    f"RETURNING pg_column_size({table}.*) AS size) SELECT count(*), coalesce(sum(size), 0) FROM gone"),
            {"ids": ids},
        ).one()  # fmt: skip
        return int(found[0]), int(found[1])
    result = session.execute(
        sa.delete(model).where(column.in_(ids)).execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0), 0


def _sqlite_size(db: Database) -> int | None:
    if db.engine.dialect.name != "sqlite":
        return None
    with db.engine.connect() as connection:
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar() or 0
        size = connection.exec_driver_sql("PRAGMA page_size").scalar() or 0
    return int(pages) * int(size)


def _reclaim(db: Database) -> None:
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if db.engine.dialect.name == "postgresql":
            connection.exec_driver_sql("VACUUM (ANALYZE) run_log_lines, step_executions, runs")
        elif db.engine.dialect.name == "sqlite":
            if connection.exec_driver_sql("PRAGMA auto_vacuum").scalar() == 2:  # incremental
                # executescript steps the pragma to its end; execute() frees a single page per call.
                connection.connection.dbapi_connection.executescript("PRAGMA incremental_vacuum;")
            else:
                # Not converted here: a full VACUUM holds the only write lock for as long as it takes, and every
                # other process of the hub would fail meanwhile. The freed pages are reused by new runs.
                log.warning("retention: this SQLite file predates incremental vacuum, so it keeps its size (new "
                            "runs reuse the space); to shrink it once, stop the hub and run: sqlite3 FILE "
                            "'PRAGMA auto_vacuum=INCREMENTAL; VACUUM;'")  # fmt: skip
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
