"""Polling flows on a cron schedule.

A flow whose trigger polls (its function's descriptor says `"type": "polling"`) runs on the cron expression in
its trigger node's settings (`settings.schedule`; the built-in Schedule trigger's `cron` field works too). The
schedule is one rq-scheduler cron job per flow (`hub-poll-<flow>`): the activation job adds it, the
deactivation job removes it, and adding it again replaces it, so activating twice never makes two. Each tick
is an rq job (`poll_tick`) on the tenant's own tick queue, which control workers take in turn with the other
tenants' (app/control/worker.py: a tenant with a thousand flows due at once delays nobody else's). It starts a run of the flow's published version, unless the
run the previous tick started is still in flight: then the tick is skipped and counted, as the seed asks ("if
an execution of a flow takes longer than its scheduling interval, the following executions must be skipped").

Ticks are aligned to the wall clock in UTC, as cron's are: `*/3 * * * *` fires at minutes 0, 3, 6, ... of every
hour, not every third minute from the moment the flow was activated. rq-scheduler computes the next fire time
from the moment a tick fires, so ticks missed while the scheduler was down come as one tick when it is back,
not as a burst. Day of week 0 and 7 both mean Sunday."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

import redis
from cron_descriptor import get_description
from croniter import croniter
from rq_scheduler import Scheduler

from app.errors import ValidationError
from app.runtime_ids import runtime_id
from app.storage.models import FlowStatus
from app.storage.scoping import tenant_session
from runtime.bus.keys import TenantKeys
from runtime.bus.streams import BacklogFullError, ConcurrencyLimitError
from runtime.control import CONTROL_QUEUE, TICK_QUEUES, tick_queue
from runtime.flows.compiler import ExecutionPlan

log = logging.getLogger("hub.schedules")
JOB_PREFIX = "hub-poll-"


@dataclass(frozen=True)
class Schedule:
    cron: str

    def describe(self) -> str:
        return str(get_description(self.cron))

    def next_times(self, count: int = 5, after: dt.datetime | None = None) -> list[dt.datetime]:
        start = after or dt.datetime.now(dt.UTC)
        found = croniter(self.cron, start)
        return [found.get_next(dt.datetime) for _ in range(count)]


def parse_schedule(text: str) -> Schedule:
    """A standard 5-field cron expression; raises ValidationError saying what is wrong."""
    cron = " ".join(str(text).split())
    fields = cron.split(" ")
    if len(fields) != 5:
        raise ValidationError(
            f"The schedule {text!r} is not a cron expression of 5 fields (minute hour day month weekday), "
            "e.g. '*/15 * * * *'"
        )
    if not croniter.is_valid(cron):
        raise ValidationError(f"The schedule {text!r} is not a valid cron expression, e.g. '*/15 * * * *'")
    return Schedule(cron)


def is_polling(plan: ExecutionPlan) -> bool:
    step = plan.entry_step
    found = (step.component.descriptor.get("triggers") or {}).get(step.function.id) or {}
    return str(found.get("type") or "").lower() == "polling"


def schedule_of(plan: ExecutionPlan) -> Schedule | None:
    """The flow's schedule, None when its trigger does not poll; ValidationError when it polls without a valid
    schedule (naming the node)."""
    if not is_polling(plan):
        return None
    node = plan.entry_step.node
    text = node.settings.schedule or str(node.fields.get("cron") or "")
    if not text.strip():
        raise ValidationError(
            f"{node.id}: a polling trigger needs a schedule (a cron expression, e.g. '*/15 * * * *')"
        )
    try:
        return parse_schedule(text)
    except ValidationError as exc:
        raise ValidationError(f"{node.id}: {exc}") from None


def add(connection: redis.Redis, tenant_id: uuid.UUID, flow_id: uuid.UUID, schedule: Schedule) -> None:
    """Add or replace the flow's cron job (one per flow, whatever happens twice)."""
    queue = tick_queue(runtime_id(tenant_id))
    connection.sadd(TICK_QUEUES, queue)  # before the first tick: control workers listen to it from now on
    Scheduler(queue_name=CONTROL_QUEUE, connection=connection).cron(
        schedule.cron,
        func=poll_tick,
        args=[str(tenant_id), str(flow_id)],
        id=f"{JOB_PREFIX}{flow_id}",
        queue_name=queue,
        result_ttl=60,
        description=f"poll flow {flow_id} ({schedule.cron})",
    )


def remove(connection: redis.Redis, flow_id: uuid.UUID) -> None:
    Scheduler(queue_name=CONTROL_QUEUE, connection=connection).cancel(f"{JOB_PREFIX}{flow_id}")


def scheduled(connection: redis.Redis, flow_id: uuid.UUID) -> dt.datetime | None:
    """When the flow's next tick fires (UTC), None when it has no schedule."""
    score = connection.zscore(Scheduler.scheduled_jobs_key, f"{JOB_PREFIX}{flow_id}")
    return dt.datetime.fromtimestamp(score, dt.UTC) if score is not None else None


def skipped(connection: redis.Redis, tenant_id: uuid.UUID, flow_id: uuid.UUID) -> int:
    """Ticks skipped because the previous run was still in flight."""
    return int(connection.hget(_state_key(tenant_id, flow_id), "skipped") or 0)


def _state_key(tenant_id: uuid.UUID, flow_id: uuid.UUID) -> str:
    return f"{TenantKeys(runtime_id(tenant_id)).base}:poll:{runtime_id(flow_id)}"


def poll_tick(tenant: str, flow: str) -> str:
    """A tick (an rq job): start a run of the flow unless the previous tick's run is still in flight. Returns
    what it did: started, skipped, inactive, refused (the tenant's backlog is full)."""
    from app.control.context import current  # the job runs in a worker, inside its control context
    from app.services.plans import current_plan, get_flow

    ctx = current()
    tenant_id, flow_id = uuid.UUID(tenant), uuid.UUID(flow)
    with tenant_session(ctx.db.sessions, tenant_id) as session:
        active = get_flow(session, flow_id).status == FlowStatus.ACTIVE.value
    if not active:  # deactivated while this tick was queued (or a schedule left behind): heal it
        remove(ctx.bus.redis, flow_id)
        return "inactive"
    state = _state_key(tenant_id, flow_id)
    previous = ctx.bus.redis.hget(state, "run")
    rt_tenant = runtime_id(tenant_id)
    if previous and ctx.bus.runs_in_flight(rt_tenant, [previous.decode()]):
        ctx.bus.redis.hincrby(state, "skipped", 1)
        log.info("flow %s: tick skipped, its previous run %s is still in flight", flow_id, previous.decode())
        return "skipped"
    version, plan = current_plan(ctx.db, ctx.components_for(tenant_id), tenant_id, flow_id)
    run_id = uuid.uuid4().hex
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    try:
        ctx.bus.start_run(rt_tenant, runtime_id(flow_id), runtime_id(version.id), plan.entry,
                          {"data": {"tick": now}}, run_id=run_id, trigger="schedule")  # fmt: skip
    except ConcurrencyLimitError:  # the flow skips runs beyond its limit of runs at once
        ctx.bus.redis.hincrby(state, "skipped", 1)
        log.info("flow %s: tick skipped, the flow is at its concurrency limit", flow_id)
        return "skipped"
    except BacklogFullError:
        ctx.bus.redis.hincrby(state, "refused", 1)
        log.warning("flow %s: tick refused, the tenant's backlog is full", flow_id)
        return "refused"
    ctx.bus.redis.hset(state, mapping={"run": run_id, "at": now})
    return "started"
