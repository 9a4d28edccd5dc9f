"""The control plane's own check, every minute (an rq-scheduler interval job): flows left `starting` or
`stopping` for longer than STUCK_AFTER (the job that was to converge them was lost with a killed worker, or
Redis lost it) get a converge job again, and active polling flows whose schedule is missing (Redis restarted
without its data) get it back. Converging is idempotent, so an extra job costs nothing. Tenants' quotas and
the egress allow list are written to Redis again too (a tenant created from the command line, or a Redis that
lost them)."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import sqlalchemy as sa
from rq_scheduler import Scheduler

from app.control import schedules
from app.control.context import current
from app.control.flow_jobs import enqueue_converge
from app.services.egress import publish as publish_egress
from app.services.quotas import publish_all
from app.storage.models import Flow, FlowStatus
from app.storage.scoping import system_session
from app.storage.types import utcnow
from runtime.control import CONTROL_QUEUE

log = logging.getLogger("hub.control")
JOB_ID = "hub-control-reaper"
INTERVAL_S = 60
STUCK_AFTER = dt.timedelta(minutes=2)


def install(scheduler: Scheduler) -> None:
    """Register the check (once, whatever the number of schedulers: the job id is fixed)."""
    scheduler.cancel(JOB_ID)
    scheduler.schedule(scheduled_time=dt.datetime.now(dt.UTC).replace(tzinfo=None), func=reap, interval=INTERVAL_S,
                       repeat=None, id=JOB_ID, queue_name=CONTROL_QUEUE, result_ttl=INTERVAL_S)  # fmt: skip


def reap(now: dt.datetime | None = None) -> dict[str, int]:
    """Returns how many flows it handed back to the workers and how many schedules it restored."""
    ctx = current()
    now = now or utcnow()
    with system_session(ctx.db.sessions) as session:
        stuck = session.execute(
            sa.select(Flow.tenant_id, Flow.id).where(
                Flow.status.in_([FlowStatus.STARTING.value, FlowStatus.STOPPING.value]),
                Flow.updated_at < now - STUCK_AFTER,
            )
        ).all()
        active = session.execute(
            sa.select(Flow.tenant_id, Flow.id).where(Flow.status == FlowStatus.ACTIVE.value)
        ).all()
    enqueue = enqueue_converge(ctx.bus.redis)
    for tenant_id, flow_id in stuck:
        log.warning("flow %s has been %s for a while: converging it again", flow_id, "starting or stopping")
        enqueue(tenant_id, flow_id, None)
    restored = 0
    for tenant_id, flow_id in active:
        if schedules.scheduled(ctx.bus.redis, flow_id) is None and _polls(ctx, tenant_id, flow_id):
            enqueue(tenant_id, flow_id, None)  # an active flow's converge puts its schedule back
            restored += 1
    publish_all(ctx.db, ctx.bus.redis, ctx.quotas)
    publish_egress(ctx.db, ctx.bus.redis)
    return {"stuck": len(stuck), "schedules": restored}


def _polls(ctx, tenant_id: uuid.UUID, flow_id: uuid.UUID) -> bool:
    from app.errors import HubError
    from app.services.plans import current_plan

    try:
        _, plan = current_plan(ctx.db, ctx.components_for(tenant_id), tenant_id, flow_id)
    except HubError:
        return False
    return schedules.is_polling(plan)
