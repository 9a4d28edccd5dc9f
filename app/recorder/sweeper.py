"""Close runs that can no longer finish: their bookkeeping vanished from Redis (lost data, a flushed database).

A run's Redis hash is deleted by the same atomic commit that emits its run.finished event. So a run that is
still "running" in SQL, whose hash is gone, and whose tenant's events have all been recorded since the hash
was seen missing, will never receive that event: it is closed here as failed, with a reason a person can read.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from app.runtime_ids import runtime_id
from app.storage.db import Database
from app.storage.models import Run, RunStatus
from app.storage.scoping import system_session
from app.storage.types import utcnow
from runtime.bus.events import EventStreams
from runtime.bus.streams import StreamsBus

log = logging.getLogger(__name__)

OPEN = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)
LOST_REASON = (
    "the run's bookkeeping disappeared from Redis (was Redis restarted without its data?), so it can never "
    "finish; messages of it that were still in flight were lost. Replay the run to process its input again."
)


@dataclass
class RunSweeper:
    db: Database
    bus: StreamsBus
    events: EventStreams
    grace_s: float = 120.0
    limit: int = 500

    def sweep(self) -> int:
        """Close lost runs; returns how many were closed."""
        cutoff = utcnow() - dt.timedelta(seconds=self.grace_s)
        with system_session(self.db.sessions) as session:
            rows = session.execute(
                sa.select(Run.id, Run.tenant_id)
                .where(Run.status.in_(OPEN), Run.started_at < cutoff)
                .order_by(Run.started_at)
                .limit(self.limit)
            ).all()
        by_tenant: dict[uuid.UUID, list[uuid.UUID]] = {}
        for run_id, tenant_id in rows:
            by_tenant.setdefault(tenant_id, []).append(run_id)
        lost: list[uuid.UUID] = []
        for tenant_id, run_ids in by_tenant.items():
            alive = self.bus.runs_in_flight(runtime_id(tenant_id), [runtime_id(r) for r in run_ids])
            missing = [r for r in run_ids if runtime_id(r) not in alive]
            # Checked after the hashes: a run.finished emitted before that check has been recorded by now.
            if missing and self.events.caught_up(runtime_id(tenant_id)):
                lost.extend(missing)
        if not lost:
            return 0
        with system_session(self.db.sessions) as session:
            closed = session.execute(
                sa.update(Run)
                .where(Run.id.in_(lost), Run.status.in_(OPEN))
                .values(status=RunStatus.FAILED.value, finished_at=utcnow(), error=LOST_REASON)
                .execution_options(synchronize_session=False)
            ).rowcount
        if closed:
            log.warning("recorder: closed %d runs whose Redis bookkeeping was lost", closed)
        return closed
