"""Polling flows on cron schedules, with real Redis, rq and rq-scheduler: activation adds one schedule and
deactivation removes it; a tick starts a run unless the previous one is still in flight (then it is skipped and
counted); ticks missed while the scheduler was down come as one; cron expressions are checked and said in
words, Sunday is 0 or 7, ticks align to the wall clock."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import orjson
import pytest
from rq import Queue
from rq_scheduler import Scheduler

from app.control import schedules
from app.control.context import ControlContext, serving
from app.control.flow_jobs import enqueue_converge
from app.control.worker import ControlWorker
from app.errors import ValidationError
from app.services import flows
from app.services.catalog import TenantCatalog
from app.services.webhooks import NO_DEFAULTS
from app.storage.models import Flow
from app.storage.scoping import tenant_session
from runtime.bus.keys import TenantKeys
from runtime.control import CONTROL_QUEUE, tick_queue
from runtime.steps.executor import InlineExecutor
from tests.app.control.test_flow_jobs import run_jobs
from tests.app.hub_runtime import HubRuntime


def control(hub: HubRuntime) -> ControlContext:
    return ControlContext(
        hub.db, hub.bus, lambda t: TenantCatalog(hub.db, t), {"inline": InlineExecutor()}, NO_DEFAULTS
    )


def polling_flow(
    hub: HubRuntime,
    cron: str | None = "*/15 * * * *",
    trigger: str = "schedule",
    tenant_id: uuid.UUID | None = None,
) -> uuid.UUID:
    tenant_id = tenant_id or hub.tenant_id
    start = {
        "id": "start",
        "component": "schedule",
        "function": "tick",
        "fields": {"cron": cron} if cron else {},
    }
    if trigger == "http_poll":
        start = {"id": "start", "component": "http_poll", "function": "poll",
                 "fields": {"url": "https://example.com/items", "id": "id"}}  # fmt: skip
    nodes = [start, {"id": "log", "component": "log", "function": "log"}]
    flow = flows.create_flow(
        hub.db, tenant_id, "poller", {"nodes": nodes, "edges": [{"source": "start", "target": "log"}]}
    )
    flows.publish_flow(hub.db, hub.bus, TenantCatalog(hub.db, tenant_id), tenant_id, flow.id)
    return flow.id


def activate(hub: HubRuntime, flow_id: uuid.UUID, tenant_id: uuid.UUID | None = None) -> str:
    tenant_id = tenant_id or hub.tenant_id
    flows.request_activation(hub.db, tenant_id, flow_id, enqueue=enqueue_converge(hub.bus.redis))
    run_jobs(hub, control(hub))
    with tenant_session(hub.db.sessions, tenant_id) as session:
        flow = session.get(Flow, flow_id)
        return f"{flow.status}: {flow.status_reason or ''}"


def poll_jobs(hub: HubRuntime) -> list[str]:
    return [
        m.decode()
        for m in hub.bus.redis.zrange(Scheduler.scheduled_jobs_key, 0, -1)
        if m.startswith(b"hub-poll-")
    ]


def test_cron_expressions_are_checked_said_in_words_and_aligned_to_the_wall_clock() -> None:
    every = schedules.parse_schedule("*/15  *  * * *")
    assert every.cron == "*/15 * * * *" and every.describe() == "Every 15 minutes"
    start = dt.datetime(2026, 11, 28, 10, 7, 30, tzinfo=dt.UTC)
    assert [t.strftime("%H:%M") for t in every.next_times(5, start)] == [
        "10:15",
        "10:30",
        "10:45",
        "11:00",
        "11:15",
    ]
    sunday_0, sunday_7 = schedules.parse_schedule("0 9 * * 0"), schedules.parse_schedule("0 9 * * 7")
    assert sunday_0.next_times(3, start) == sunday_7.next_times(3, start)
    assert sunday_0.next_times(1, start)[0].weekday() == 6  # a Sunday
    with pytest.raises(ValidationError, match="is not a cron expression of 5 fields"):
        schedules.parse_schedule("*/5 * * *")
    with pytest.raises(ValidationError, match="'61 \\* \\* \\* \\*' is not a valid cron expression"):
        schedules.parse_schedule("61 * * * *")


def test_activation_adds_one_schedule_and_deactivation_removes_it(hub: HubRuntime) -> None:
    flow_id = polling_flow(hub)
    assert activate(hub, flow_id) == "active: "
    assert activate(hub, flow_id) == "active: "  # again: still one schedule
    flows.request_activation(hub.db, hub.tenant_id, flow_id, enqueue=enqueue_converge(hub.bus.redis))
    run_jobs(hub, control(hub))
    assert poll_jobs(hub) == [f"hub-poll-{flow_id}"]
    fires = schedules.scheduled(hub.bus.redis, flow_id)
    assert fires is not None and fires.minute % 15 == 0 and fires > dt.datetime.now(dt.UTC)

    flows.request_deactivation(hub.db, hub.bus, TenantCatalog(hub.db, hub.tenant_id), hub.tenant_id, flow_id,
                               enqueue=enqueue_converge(hub.bus.redis))  # fmt: skip
    run_jobs(hub, control(hub))
    assert poll_jobs(hub) == [] and schedules.scheduled(hub.bus.redis, flow_id) is None


def test_a_polling_flow_without_a_valid_schedule_is_refused_naming_the_node(hub: HubRuntime) -> None:
    assert activate(hub, polling_flow(hub, cron=None, trigger="http_poll")).startswith(
        "error: Cannot run here: start: a polling trigger needs a schedule (a cron expression"
    )
    assert activate(hub, polling_flow(hub, cron="every day")).startswith(
        "error: Cannot run here: start: The schedule 'every day' is not a cron expression of 5 fields"
    )
    assert poll_jobs(hub) == []


def test_a_tick_is_skipped_and_counted_while_the_previous_run_is_in_flight(hub: HubRuntime) -> None:
    flow_id = polling_flow(hub)
    activate(hub, flow_id)
    with serving(control(hub)):
        assert schedules.poll_tick(str(hub.tenant_id), str(flow_id)) == "started"
        assert schedules.poll_tick(str(hub.tenant_id), str(flow_id)) == "skipped"  # no worker ran it yet
        assert schedules.skipped(hub.bus.redis, hub.tenant_id, flow_id) == 1
        hub.drive(lambda: hub.bus.runs_in_flight(hub.tenant_id.hex, _runs(hub, flow_id)) == set())
        assert schedules.poll_tick(str(hub.tenant_id), str(flow_id)) == "started"
    assert len(_runs(hub, flow_id)) == 2


def _runs(hub: HubRuntime, flow_id: uuid.UUID) -> list[str]:
    events = hub.bus.redis.xrange(TenantKeys(hub.tenant_id.hex).events)
    found = [e for _, fields in events for e in orjson.loads(fields[b"e"]) if e["t"] == "run.started"]
    return sorted({e["run"] for e in found if e.get("flow") == flow_id.hex})


def test_ticks_missed_while_the_scheduler_was_down_come_as_one(hub: HubRuntime) -> None:
    flow_id = polling_flow(hub)
    activate(hub, flow_id)
    # The scheduler was stopped for an hour: four ticks of "*/15" were due meanwhile.
    hub.bus.redis.zadd(
        Scheduler.scheduled_jobs_key, {f"hub-poll-{flow_id}": dt.datetime.now(dt.UTC).timestamp() - 3600}
    )
    Scheduler(
        queue_name=CONTROL_QUEUE, connection=hub.bus.redis
    ).enqueue_jobs()  # what it does when it is back
    queued = Queue(tick_queue(hub.tenant_id.hex), connection=hub.bus.redis).jobs
    assert [job.id for job in queued] == [f"hub-poll-{flow_id}"]
    assert schedules.scheduled(hub.bus.redis, flow_id) > dt.datetime.now(dt.UTC)  # and the next is on time
    run_jobs(hub, control(hub))
    assert len(_runs(hub, flow_id)) == 1


def test_a_tick_of_a_flow_deactivated_meanwhile_removes_the_schedule(hub: HubRuntime) -> None:
    flow_id = polling_flow(hub)
    activate(hub, flow_id)
    flows.set_status(
        hub.db, hub.tenant_id, flow_id, flows.FlowStatus.INACTIVE, None
    )  # as if the job was lost
    with serving(control(hub)):
        assert schedules.poll_tick(str(hub.tenant_id), str(flow_id)) == "inactive"
    assert poll_jobs(hub) == []


def test_a_tenant_with_a_flood_of_ticks_does_not_delay_another_tenants_tick(hub: HubRuntime) -> None:
    """Each tenant's ticks wait in its own rq queue; control workers take the queues in turn."""
    flooding = polling_flow(hub)
    assert activate(hub, flooding).startswith("active")
    other_tenant = hub.new_tenant("Other")
    while other_tenant.hex < hub.tenant_id.hex:  # the flood's queue comes first in the worker's list
        other_tenant = hub.new_tenant("Other")
    other = polling_flow(hub, tenant_id=other_tenant)
    assert activate(hub, other, other_tenant).startswith("active")
    flood = Queue(tick_queue(hub.tenant_id.hex), connection=hub.bus.redis)
    for _ in range(300):  # a thousand flows of one tenant due at once, say
        flood.enqueue(schedules.poll_tick, str(hub.tenant_id), str(flooding))
    due = time.time()
    Queue(tick_queue(other_tenant.hex), connection=hub.bus.redis).enqueue(
        schedules.poll_tick, str(other_tenant), str(other)
    )
    with serving(control(hub)):
        ControlWorker(hub.bus.redis).work(burst=True, with_scheduler=False, max_jobs=3)
    events = hub.bus.redis.xrange(TenantKeys(other_tenant.hex).events)
    started = [e for _, f in events for e in orjson.loads(f[b"e"]) if e["t"] == "run.started"]
    assert len(started) == 1, "the other tenant's tick waited behind the flood"
    lateness_ms = started[0]["ts"] - due * 1000
    assert lateness_ms < 1000, f"the tick started its run {lateness_ms:.0f} ms late"
    assert flood.count >= 297  # the flood is still waiting: the other tenant did not wait for it


def _note_tick(key: str) -> None:
    from rq import get_current_job

    get_current_job().connection.set(key, "done")


def test_an_idle_control_worker_hears_a_new_tenants_tick_queue(hub: HubRuntime, monkeypatch) -> None:
    import threading

    from app.control import worker as control_worker

    monkeypatch.setattr(control_worker, "REFRESH_S", 1)

    class Quiet(ControlWorker):
        def _install_signal_handlers(self) -> None:  # signals belong to the main thread, not this test's
            pass

    from rq.timeouts import TimerDeathPenalty

    worker = Quiet(hub.bus.redis)
    worker.death_penalty_class = TimerDeathPenalty  # job time limits by timer: signals need the main thread
    thread = threading.Thread(target=worker.work, kwargs={"with_scheduler": False}, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)  # idle, waiting on the queues it knew
        queue = tick_queue("newtenant")
        hub.bus.redis.sadd("hub:tick-queues", queue)
        Queue(queue, connection=hub.bus.redis).enqueue(_note_tick, "test:tick:heard")
        deadline = time.monotonic() + 10
        while not hub.bus.redis.get("test:tick:heard") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hub.bus.redis.get("test:tick:heard") == b"done"
    finally:
        worker._stop_requested = True
        thread.join(10)


def test_a_redis_blip_while_reading_the_tick_queues_keeps_the_ones_known(
    hub: HubRuntime, monkeypatch
) -> None:
    import redis as redis_lib

    worker = ControlWorker(hub.bus.redis)

    def lost(*args, **kwargs):
        raise redis_lib.ConnectionError("Redis went away")

    monkeypatch.setattr(worker.connection, "smembers", lost)
    worker._refresh_queues()  # logs, keeps listening
    assert [q.name for q in worker.queues] == [CONTROL_QUEUE]
