"""Activation and deactivation of a flow, as rq jobs on the control queue (and, for an active flow, its warm
runners brought in line with its current version and webhook mode).

The web process records what the user wants (status starting or stopping) and enqueues `converge_flow`; the
job, in a worker, brings the flow there: for an activation it checks every step can run here, starts the
runners (so a component that cannot load fails the activation, with its reason, not every message), pins
them warm when the flow's webhook answers synchronously, opens the URL and says active; for a deactivation
it unpins the runners and says inactive. Jobs for one flow take a Redis lock and every status change is
conditional on the status the job found, so double or concurrent requests, in any order, end in the state
asked for last, with one set of runners."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import redis
from rq import Queue

from app.control import schedules
from app.control.context import ControlContext, current
from app.control.standing import pardon
from app.errors import FlowInvalidError, HubError, NotFoundError, ValidationError
from app.runtime_ids import runtime_id
from app.services import flows, webhooks
from app.services.plans import current_plan
from app.storage.models import FlowStatus
from app.storage.scoping import tenant_session
from runtime.bus.keys import TenantKeys
from runtime.control import CONTROL_QUEUE
from runtime.executors.process import RunnerNotReady
from runtime.executors.warm import runners_of
from runtime.flows.compiler import ExecutionPlan, Problem

log = logging.getLogger("hub.control")
LOCK_S = 600  # longer than the slowest activation (cold containers of a big flow)


def enqueue_converge(connection: redis.Redis) -> flows.Enqueue:
    """How the web process hands a flow to the control queue."""
    queue = Queue(CONTROL_QUEUE, connection=connection)

    def enqueue(tenant_id: uuid.UUID, flow_id: uuid.UUID, user_id: uuid.UUID | None) -> None:
        queue.enqueue(
            converge_flow,
            str(tenant_id),
            str(flow_id),
            str(user_id) if user_id else None,
            # Longer than a wait for the lock plus a whole activation: rq must never kill a job while it waits.
            job_timeout=2 * LOCK_S + 60,
            result_ttl=60,
            failure_ttl=86_400,
            description=f"converge flow {flow_id}",
        )

    return enqueue


def converge_flow(tenant: str, flow: str, user: str | None = None) -> str:
    """Bring the flow to the status its user asked for; returns the status it ends in."""
    ctx = current()
    tenant_id, flow_id = uuid.UUID(tenant), uuid.UUID(flow)
    user_id = uuid.UUID(user) if user else None
    # The runtime's names (hex ids): the same tenant keys and runner keys the workers use.
    rt_tenant, rt_flow = runtime_id(tenant_id), runtime_id(flow_id)
    lock = ctx.bus.redis.lock(
        f"{TenantKeys(rt_tenant).base}:flowctl:{rt_flow}", timeout=LOCK_S, blocking_timeout=LOCK_S
    )
    with lock:
        try:
            with tenant_session(ctx.db.sessions, tenant_id) as session:
                status = flows.get_flow(session, flow_id).status
        except NotFoundError:
            ctx.warm.unpin(rt_tenant, rt_flow)
            schedules.remove(ctx.bus.redis, flow_id)
            return "deleted"  # deleted since it was asked for: nothing is left to start or stop
        try:
            if status == FlowStatus.STARTING.value:
                _activate(ctx, tenant_id, flow_id, user_id)
            elif status == FlowStatus.STOPPING.value:
                _deactivate(ctx, tenant_id, flow_id, user_id)
            elif status == FlowStatus.ACTIVE.value:
                _repin(ctx, tenant_id, flow_id)  # a new version or webhook mode: its runners as they are now
            else:
                ctx.warm.unpin(rt_tenant, rt_flow)
                schedules.remove(ctx.bus.redis, flow_id)
        except FlowInvalidError:
            pass  # the flow is in error with the reason; nothing else to do
        except Exception as exc:
            # A job that dies quietly would leave the flow "starting" for ever: say what happened on the flow.
            log.exception("converging flow %s failed", flow_id)
            # Only a flow waiting for this job goes to error; an active flow's pins were logged, it runs on.
            if status in (FlowStatus.STARTING, FlowStatus.STOPPING):
                why = str(exc) if isinstance(exc, HubError) else f"{exc.__class__.__name__}: {exc}"
                flows.set_status(
                    ctx.db,
                    tenant_id,
                    flow_id,
                    FlowStatus.ERROR,
                    f"The worker failed: {why}",
                    FlowStatus(status),
                )
        return _status(ctx, tenant_id, flow_id)


def _status(ctx: ControlContext, tenant_id: uuid.UUID, flow_id: uuid.UUID) -> str:
    with tenant_session(ctx.db.sessions, tenant_id) as session:
        return flows.get_flow(session, flow_id).status


def _prepare(
    ctx: ControlContext, tenant_id: uuid.UUID, flow_id: uuid.UUID, plan: ExecutionPlan
) -> list[Problem]:
    """Check the schedule of a polling flow; start the plan's runners here; pin them warm when the flow's
    webhook answers synchronously."""
    try:
        schedules.schedule_of(plan)
    except ValidationError as exc:
        return [Problem("schedule", str(exc).split(": ", 1)[-1], plan.entry)]
    problems = start_runners(ctx.executors, runtime_id(tenant_id), plan)
    _pin(ctx, tenant_id, flow_id, None if problems else plan)
    return problems


def _pin(ctx: ControlContext, tenant_id: uuid.UUID, flow_id: uuid.UUID, plan: ExecutionPlan | None) -> None:
    """Pin the plan's runners warm when the flow's webhook answers synchronously; else (or without a plan that
    runs) unpin them."""
    if plan is not None and webhooks.answers_synchronously(ctx.db, tenant_id, flow_id):
        ctx.warm.pin(runtime_id(tenant_id), runtime_id(flow_id), runners_of(plan))
    else:
        ctx.warm.unpin(runtime_id(tenant_id), runtime_id(flow_id))


def _repin(ctx: ControlContext, tenant_id: uuid.UUID, flow_id: uuid.UUID) -> None:
    """Pins and the schedule only: the workers' housekeeping starts what is pinned, and a repeated activation
    of an active flow must start nothing here."""
    _, plan = current_plan(ctx.db, ctx.components_for(tenant_id), tenant_id, flow_id)
    _pin(ctx, tenant_id, flow_id, plan)
    _schedule(ctx, tenant_id, flow_id, plan)


def _schedule(ctx: ControlContext, tenant_id: uuid.UUID, flow_id: uuid.UUID, plan: ExecutionPlan) -> None:
    found = schedules.schedule_of(plan)
    if found is None:
        schedules.remove(ctx.bus.redis, flow_id)
    else:
        schedules.add(ctx.bus.redis, tenant_id, flow_id, found)


def _activate(
    ctx: ControlContext, tenant_id: uuid.UUID, flow_id: uuid.UUID, user_id: uuid.UUID | None
) -> None:
    compiled: list[ExecutionPlan] = []  # the plan activation compiled: its schedule comes from it too

    def prepare(plan: ExecutionPlan) -> list[Problem]:
        compiled.append(plan)
        return _prepare(ctx, tenant_id, flow_id, plan)

    flow = flows.activate_flow(
        ctx.db,
        ctx.bus,
        ctx.components_for(tenant_id),
        tenant_id,
        flow_id,
        user_id=user_id,
        routes=ctx.routes,
        images=ctx.images,
        prepare=prepare,
        expect=FlowStatus.STARTING,
    )
    if flow.status == FlowStatus.ACTIVE.value:  # not if a deactivation was asked for meanwhile
        _schedule(ctx, tenant_id, flow_id, compiled[0])
        pardon(ctx.bus.redis, tenant_id, flow_id)  # activated again: its record starts clean


def _deactivate(
    ctx: ControlContext, tenant_id: uuid.UUID, flow_id: uuid.UUID, user_id: uuid.UUID | None
) -> None:
    ctx.warm.unpin(runtime_id(tenant_id), runtime_id(flow_id))  # the idle stop takes its runners now
    schedules.remove(ctx.bus.redis, flow_id)
    flows.deactivate_flow(
        ctx.db,
        ctx.bus,
        ctx.components_for(tenant_id),
        tenant_id,
        flow_id,
        user_id=user_id,
        routes=ctx.routes,
        expect=FlowStatus.STOPPING,
    )


def start_runners(executors: Any, tenant: str, plan: ExecutionPlan) -> list[Problem]:
    """Start (or find warm) every runner the plan needs in this worker and check its component loads with the
    functions the flow calls; what failed, naming the steps."""
    problems = []
    for spec in runners_of(plan):
        steps = [s for s in plan.steps.values() if (s.component.code or s.component.name) == spec.code]
        title, node = steps[0].component.title, steps[0].id
        executor = executors.get(spec.executor)
        if executor is None:
            problems.append(Problem("no_executor", f"{title!r} needs the {spec.executor} executor, which this "
                                    "worker does not have", node))  # fmt: skip
            continue
        try:
            executor.warm_up(tenant, spec.code, spec.network, spec.functions, instances=spec.instances)
        except RunnerNotReady as exc:
            problems.append(Problem("runner_failed", f"{title!r} does not start: {exc}", node))
    return problems
