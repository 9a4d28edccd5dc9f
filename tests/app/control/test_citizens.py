"""The bad-citizen watch: flows that keep hitting their limits or crashing their runners go to low priority,
then throttled, then suspended, one step per bad minute; audited; calm minutes step back down; activating the
flow again clears its record."""

from __future__ import annotations

import sqlalchemy as sa

from app.control import citizens
from app.control.citizens import Strikes, judge
from app.control.context import serving
from app.control.standing import Standing, standing_of
from app.storage.models import AuditEvent, Flow
from app.storage.scoping import system_session, tenant_session
from runtime.bus.keys import TenantKeys
from tests.app.control.test_flow_jobs import run_jobs
from tests.app.control.test_schedules import activate, control, polling_flow
from tests.app.hub_runtime import HubRuntime

CRASHING = Strikes(crash=citizens.CRASH_STRIKES)
REFUSED = Strikes(quota=citizens.QUOTA_STRIKES)


def test_each_bad_minute_is_one_step_further_and_calm_minutes_step_back() -> None:
    standing = Standing()
    levels = []
    for _ in range(3):
        standing = judge(standing, CRASHING, "t")
        levels.append(standing.label)
    assert levels == ["low priority", "throttled", "suspended"]
    assert "crashed their runner" in standing.reason
    assert judge(standing, Strikes(), "t") == standing  # suspended stays until someone activates the flow

    low = judge(Standing(), REFUSED, "t")
    assert low.label == "low priority" and "refused by the tenant's quotas" in low.reason
    # Anyone with the URL can cause refusals: they never take a flow further than low priority.
    assert judge(judge(low, REFUSED, "t"), REFUSED, "t").level == 1
    # ... nor keep a crashing flow throttled: for a throttled flow, a minute of refused requests is calm.
    throttled = judge(judge(Standing(), CRASHING, "t"), CRASHING, "t")
    assert judge(throttled, REFUSED, "t").calm == 1
    for _ in range(citizens.CALM_MINUTES - 1):
        low = judge(low, Strikes(), "t")
    assert low.level == 1
    assert judge(low, Strikes(), "t") == Standing()
    assert judge(Standing(), Strikes(quota=citizens.QUOTA_STRIKES - 1, crash=1), "t") == Standing()


def _strike(hub: HubRuntime, flow_id, minute: int, kind: str = "crash", count: int = 5) -> None:
    tk = hub.bus.ensure_tenant(hub.tenant_id.hex)  # a tenant whose steps ran has streams
    hub.bus.redis.hincrby(tk.usage(minute), f"strike:{kind}:{tk.queue(flow_id.hex)}", count)


def test_a_flow_that_keeps_crashing_its_runners_is_escalated_audited_and_suspended(hub: HubRuntime) -> None:
    flow_id = polling_flow(hub)
    assert activate(hub, flow_id).startswith("active")
    ctx = control(hub)
    tk = TenantKeys(hub.tenant_id.hex)
    with serving(ctx):
        _strike(hub, flow_id, 1000)
        assert citizens.watch(at_minute=1000) == {"low priority": 1}
        assert hub.bus.redis.hget(tk.penalties, tk.queue(flow_id.hex)) == b"low"
        assert citizens.watch(at_minute=1000) == {}  # the same minute counts once
        _strike(hub, flow_id, 1001)
        citizens.watch(at_minute=1001)
        assert hub.bus.redis.hget(tk.penalties, tk.queue(flow_id.hex)) == b"throttle"
        _strike(hub, flow_id, 1002)
        assert citizens.watch(at_minute=1002) == {"suspended": 1}
    run_jobs(hub, ctx)  # the deactivation the watch asked for
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        assert session.get(Flow, flow_id).status == "inactive"
    standing = standing_of(hub.bus.redis, hub.tenant_id, flow_id)
    assert standing.label == "suspended" and "crashed their runner" in standing.reason
    with system_session(hub.db.sessions) as session:
        actions = session.scalars(
            sa.select(AuditEvent.action).where(AuditEvent.target_id == str(flow_id)).order_by(AuditEvent.id)
        ).all()
    assert actions.count("flow.citizen_escalated") == 3

    assert activate(hub, flow_id).startswith("active")  # a person activates it again: a clean record
    assert standing_of(hub.bus.redis, hub.tenant_id, flow_id) == Standing()
    assert hub.bus.redis.hget(tk.penalties, tk.queue(flow_id.hex)) is None


def test_a_calm_flow_is_relieved(hub: HubRuntime) -> None:
    flow_id = polling_flow(hub)
    tk = TenantKeys(hub.tenant_id.hex)
    with serving(control(hub)):
        _strike(hub, flow_id, 2000, "quota", 25)
        citizens.watch(at_minute=2000)
        for m in range(2001, 2001 + citizens.CALM_MINUTES):
            citizens.watch(at_minute=m)
    assert standing_of(hub.bus.redis, hub.tenant_id, flow_id) == Standing()
    assert hub.bus.redis.hget(tk.penalties, tk.queue(flow_id.hex)) is None
