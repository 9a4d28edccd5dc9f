"""Reading flows: the Flows page's list (each flow with its trigger, status, published version and last run,
searched and sorted on the server) and one flow with its draft."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from app.services.plans import get_flow
from app.storage.db import Database
from app.storage.models import Flow, FlowVersion, Run
from app.storage.scoping import tenant_session

Sort = Literal["updated", "created", "name", "status", "last_run"]
SORTS: tuple[Sort, ...] = ("updated", "created", "name", "status", "last_run")
LIMIT = 500
SQL_ORDER = {
    "updated": (Flow.updated_at.desc(),),
    "created": (Flow.created_at.desc(),),
    "name": (sa.func.lower(Flow.name), Flow.id),
    "status": (Flow.status, sa.func.lower(Flow.name)),
    "last_run": (Flow.updated_at.desc(),),
}


@dataclass(frozen=True)
class FlowSummary:
    id: uuid.UUID
    name: str
    status: str
    trigger: str
    version: int  # the published version's number; 0 when never published
    created_at: dt.datetime
    updated_at: dt.datetime
    last_run_status: str  # "" when it never ran outside test mode
    last_run_at: dt.datetime | None


def list_flows(
    db: Database, tenant_id: uuid.UUID, search: str = "", sort: Sort = "updated"
) -> list[FlowSummary]:
    """Flows whose name contains `search` (any case). Newest first for times, A to Z for name and status."""
    with tenant_session(db.sessions, tenant_id) as session:
        query = sa.select(Flow.id, Flow.name, Flow.status, Flow.trigger, Flow.created_at, Flow.updated_at,
                          Flow.current_version_id)  # fmt: skip
        if search.strip():
            query = query.where(sa.func.lower(Flow.name).contains(search.strip().lower(), autoescape=True))
        # Ordered before the limit, so a tenant with more flows than the page holds sees the first ones of the
        # order it chose (by last run: the most recently changed flows, ordered by their last run).
        rows = session.execute(query.order_by(*SQL_ORDER.get(sort, SQL_ORDER["updated"])).limit(LIMIT)).all()
        versions = dict(
            session.execute(
                sa.select(FlowVersion.id, FlowVersion.number).where(
                    FlowVersion.id.in_([r.current_version_id for r in rows if r.current_version_id])
                )
            ).all()
        )
        summaries = []
        for row in rows:
            # One indexed lookup per flow (tenant, flow, started_at): cheap, and no subquery the tenant filter
            # would have to reach into.
            last = session.execute(
                sa.select(Run.status, Run.started_at)
                .where(Run.flow_id == row.id, Run.test_mode.is_(False))
                .order_by(Run.started_at.desc())
                .limit(1)
            ).first()
            summaries.append(
                FlowSummary(row.id, row.name, row.status, str((row.trigger or {}).get("kind") or "manual"),
                            versions.get(row.current_version_id, 0), row.created_at, row.updated_at,
                            last.status if last else "", last.started_at if last else None)
            )  # fmt: skip
    return _sorted(summaries, sort)


def _sorted(summaries: list[FlowSummary], sort: Sort) -> list[FlowSummary]:
    keys = {
        "updated": (lambda s: s.updated_at, True),
        "created": (lambda s: s.created_at, True),
        "name": (lambda s: s.name.lower(), False),
        "status": (lambda s: (s.status, s.name.lower()), False),
        "last_run": (lambda s: s.last_run_at.timestamp() if s.last_run_at else float("-inf"), True),
    }
    key, newest_first = keys.get(sort, keys["updated"])
    return sorted(summaries, key=key, reverse=newest_first)


@dataclass(frozen=True)
class FlowDetail:
    id: uuid.UUID
    name: str
    description: str
    status: str
    status_reason: str | None
    trigger: dict[str, Any]
    lock_version: int
    version: int | None  # the published version's number; None when never published
    graph: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime


def read_flow(db: Database, tenant_id: uuid.UUID, flow_id: uuid.UUID) -> FlowDetail:
    """One flow with its draft, as the API shows it."""
    with tenant_session(db.sessions, tenant_id) as session:
        flow = get_flow(session, flow_id)
        number = None
        if flow.current_version_id is not None:
            number = session.scalar(
                sa.select(FlowVersion.number).where(FlowVersion.id == flow.current_version_id)
            )
        return FlowDetail(flow.id, flow.name, flow.description, flow.status, flow.status_reason,
                          dict(flow.trigger or {}), flow.lock_version, number, dict(flow.graph or {}),
                          flow.created_at, flow.updated_at)  # fmt: skip
