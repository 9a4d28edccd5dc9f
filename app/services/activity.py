"""What every tenant is doing now (hub administrators): the coordinator's figures with the tenants' names and
weights, for the admin page and /metrics."""

from __future__ import annotations

from dataclasses import dataclass

import redis
import sqlalchemy as sa

from app.control.standing import Standing, standings
from app.errors import PermissionDeniedError
from app.recorder import step_metrics
from app.runtime_ids import database_id, runtime_id
from app.services import retention
from app.storage.db import Database
from app.storage.models import Flow, Tenant
from app.storage.scoping import system_session
from runtime.coordinator import report
from runtime.coordinator.report import Report, TenantFigures

RETENTION_SERIES = (
    ("jobs", "hub_retention_jobs_total", "Retention jobs run."),
    ("runs", "hub_retention_deleted_runs_total", "Runs deleted by retention."),
    ("steps", "hub_retention_deleted_steps_total", "Step executions deleted by retention."),
    ("logs", "hub_retention_deleted_log_lines_total", "Log lines deleted by retention."),
    ("bytes_freed", "hub_retention_freed_bytes_total", "Space retention gave back (see docs/runs.md)."),
)


@dataclass(frozen=True)
class TenantActivity:
    name: str
    slug: str
    weight: int
    figures: TenantFigures


def _tenants(db: Database) -> dict[str, Tenant]:
    with system_session(db.sessions) as session:
        return {runtime_id(t.id): t for t in session.scalars(sa.select(Tenant).order_by(Tenant.name))}


def activity(db: Database, client: redis.Redis, *, is_superuser: bool) -> tuple[int, list[TenantActivity]]:
    """(workers alive, each tenant's figures), busiest first."""
    if not is_superuser:
        raise PermissionDeniedError("Only hub administrators see every tenant's activity.")
    tenants = _tenants(db)
    data = report.report(client, tenants)
    rows = [TenantActivity(tenants[f.tenant].name, tenants[f.tenant].slug, tenants[f.tenant].weight, f)
            for f in data.tenants]  # fmt: skip
    rows.sort(key=lambda r: (-r.figures.usage.worker_ms_minute, -r.figures.backlog, r.name))
    return data.workers, rows


@dataclass(frozen=True)
class HeldBack:
    tenant: str
    flow: str
    standing: Standing


def held_back(db: Database, client: redis.Redis, *, is_superuser: bool) -> list[HeldBack]:
    """Flows the bad-citizen watch put on low priority, throttled or suspended, worst first."""
    if not is_superuser:
        raise PermissionDeniedError("Only hub administrators see every tenant's activity.")
    tenants = _tenants(db)
    found = [(t, flow, s) for t in tenants for flow, s in standings(client, t).items()]
    if not found:
        return []
    with system_session(db.sessions) as session:
        ids = [database_id(flow) for _, flow, _ in found]
        names = dict(session.execute(sa.select(Flow.id, Flow.name).where(Flow.id.in_(ids))).all())
    rows = [
        HeldBack(tenants[t].name, names.get(database_id(flow), "(deleted flow)"), s) for t, flow, s in found
    ]
    return sorted(rows, key=lambda r: (-r.standing.level, r.tenant, r.flow))


def metrics(db: Database, client: redis.Redis) -> bytes:
    tenants = _tenants(db)
    data: Report = report.report(client, tenants)
    names = {tenant_id: t.slug for tenant_id, t in tenants.items()}
    lines = step_metrics.exposition(step_metrics.read_figures(client), names, report.label)
    done = retention.totals(client)
    for key, name, help_text in RETENTION_SERIES:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter", f"{name} {done.get(key, 0)}"]
    return report.exposition(data, names) + ("\n".join(lines) + "\n").encode()
