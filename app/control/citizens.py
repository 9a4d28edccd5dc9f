"""The bad-citizen watch: an rq-scheduler interval job, every minute (installed by `hub scheduler`).

A flow has a bad minute when, in the last full minute, at least CRASH_STRIKES of its steps crashed their
runner (or their worker), or at least QUOTA_STRIKES of its requests were refused by the tenant's quotas
(webhook rate, backlog). The runtime counts both in the tenant's usage buckets (runtime/coordinator/usage.py).
Each bad minute takes the flow one step further:

1. low priority: its worker time counts four times against the tenant's other flows;
2. throttled: its queue gives one message a second;
3. suspended: the flow is deactivated with the reason on its page.

Refused requests take a flow to low priority at most: whoever knows a webhook URL can cause them, and must not
be able to get a flow throttled or suspended that way. Refusals by the flow's own concurrency limit (skip) are
what its owners asked for and are not counted.

Every step is in the audit log and on the Activity page (hub administrators). After CALM_MINUTES minutes
without a bad one a flow steps back down, except from suspended: a person activates it again, which clears
its record."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from dataclasses import dataclass

import orjson
import redis
from rq_scheduler import Scheduler

from app.control.context import current
from app.control.flow_jobs import enqueue_converge
from app.control.standing import Standing, standing_key, standings
from app.errors import HubError
from app.runtime_ids import database_id
from app.services import audit, flows
from app.storage.scoping import tenant_session
from runtime.bus.keys import TenantKeys
from runtime.control import CONTROL_QUEUE
from runtime.coordinator.usage import minute

log = logging.getLogger("hub.citizens")
JOB_ID = "hub-control-citizens"
INTERVAL_S = 60
QUOTA_STRIKES = 20
CRASH_STRIKES = 3
CALM_MINUTES = 10
PENALTIES = {1: "low", 2: "throttle"}


@dataclass(frozen=True)
class Strikes:
    quota: int = 0
    crash: int = 0

    def bad(self) -> tuple[str, int] | None:
        """Why this minute was bad and the highest level it may take the flow to, or None."""
        if self.crash >= CRASH_STRIKES:
            return f"{self.crash} steps crashed their runner in a minute", 3
        if self.quota >= QUOTA_STRIKES:
            return f"{self.quota} requests in a minute were refused by the tenant's quotas", 1
        return None


def judge(standing: Standing, strikes: Strikes, at: str) -> Standing:
    """The flow's standing after one more minute (the policy; no I/O)."""
    bad = strikes.bad()
    if standing.level >= 3:
        return standing  # suspended stays so until someone activates the flow again
    if bad is not None and standing.level < bad[1]:
        return Standing(level=standing.level + 1, calm=0, reason=bad[0], since=at)
    if bad is not None and standing.level == bad[1]:
        return dataclasses.replace(standing, calm=0)  # as far as this kind of strike goes: held there
    # A minute without a strike that could have brought the flow this far counts as calm (refused requests,
    # which outsiders can cause, do not keep a crashing flow throttled).
    if standing.level == 0:
        return standing
    calm = standing.calm + 1
    if calm >= CALM_MINUTES:
        level = standing.level - 1
        return Standing(
            level=level, calm=0, reason=standing.reason if level else "", since=at if level else ""
        )
    return dataclasses.replace(standing, calm=calm)


def strikes(client: redis.Redis, tenant: str, at_minute: int) -> dict[str, Strikes]:
    """flow (runtime id) -> its strikes in one minute."""
    found: dict[str, Strikes] = {}
    for field, value in client.hgetall(TenantKeys(tenant).usage(at_minute)).items():
        name = field.decode()
        if not name.startswith("strike:") or ":steps:" not in name:
            continue  # the old steps stream of a tenant has no flow to hold it against
        _, kind, queue = name.split(":", 2)
        flow = queue.rsplit(":steps:", 1)[-1]
        if kind not in ("quota", "crash"):
            continue
        old = found.get(flow, Strikes())
        found[flow] = dataclasses.replace(old, **{kind: getattr(old, kind) + int(value)})
    return found


def install(scheduler: Scheduler) -> None:
    scheduler.cancel(JOB_ID)
    scheduler.schedule(scheduled_time=dt.datetime.now(dt.UTC).replace(tzinfo=None), func=watch, interval=INTERVAL_S,
                       repeat=None, id=JOB_ID, queue_name=CONTROL_QUEUE, result_ttl=INTERVAL_S)  # fmt: skip


def watch(at_minute: int | None = None) -> dict[str, int]:
    """Judge every flow with strikes or a standing on the last full minute. Returns how many flows changed
    level, by the level they reached."""
    ctx = current()
    client = ctx.bus.redis
    at_minute = minute() - 1 if at_minute is None else at_minute
    at = dt.datetime.fromtimestamp(at_minute * 60 + 60, dt.UTC).isoformat(timespec="seconds")
    # The same minute judged twice (two schedulers, a retried job) must count once.
    if not client.set(f"hub:citizens:judged:{at_minute}", 1, nx=True, ex=3600):
        return {}
    changed: dict[str, int] = {}
    for tenant in ctx.bus.tenants():
        before = standings(client, tenant)
        seen = strikes(client, tenant, at_minute)
        for flow in set(before) | set(seen):
            old = before.get(flow, Standing())
            new = judge(old, seen.get(flow, Strikes()), at)
            if new == old:
                continue
            try:
                _apply(ctx, tenant, flow, old, new)
            except Exception:  # one flow's trouble must not leave the others of this minute unjudged
                log.exception("the watch could not judge flow %s of tenant %s", flow, tenant)
                continue
            if new.level != old.level:
                changed[new.label] = changed.get(new.label, 0) + 1
    return changed


def _apply(ctx, tenant: str, flow: str, old: Standing, new: Standing) -> None:
    client: redis.Redis = ctx.bus.redis
    tk = TenantKeys(tenant)
    pipe = client.pipeline(transaction=False)
    if new.level == 0:
        pipe.hdel(standing_key(tenant), flow)
    else:
        pipe.hset(standing_key(tenant), flow, orjson.dumps(dataclasses.asdict(new)))
    if new.level in PENALTIES:
        pipe.hset(tk.penalties, tk.queue(flow), PENALTIES[new.level])
    else:
        pipe.hdel(tk.penalties, tk.queue(flow))
    pipe.execute()
    if new.level == old.level:
        return
    tenant_id, flow_id = database_id(tenant), database_id(flow)
    verb = "escalated" if new.level > old.level else "relieved"
    log.warning(
        "flow %s of tenant %s %s to %s: %s", flow, tenant, verb, new.label, new.reason or "calm again"
    )
    try:
        with tenant_session(ctx.db.sessions, tenant_id) as session:
            audit.record(session, f"flow.citizen_{verb}", tenant_id=tenant_id, target_type="flow",
                         target_id=flow_id, level=new.label, reason=new.reason or "calm again")  # fmt: skip
        if new.level == 3:
            _suspend(ctx, tenant_id, flow_id, new.reason)
    except HubError as exc:  # the flow was deleted meanwhile
        log.info("flow %s: %s", flow, exc)


def _suspend(ctx, tenant_id: uuid.UUID, flow_id: uuid.UUID, reason: str) -> None:
    flow = flows.request_deactivation(
        ctx.db, ctx.bus, ctx.components_for(tenant_id), tenant_id, flow_id,
        enqueue=enqueue_converge(ctx.bus.redis), routes=ctx.routes,
    )  # fmt: skip
    log.warning("flow %s suspended (%s): %s", flow_id, flow.status, reason)
