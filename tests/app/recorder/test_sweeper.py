"""Runs whose Redis bookkeeping vanished are closed; runs still in flight, or not yet recorded, are not."""

from __future__ import annotations

from app.recorder.sweeper import LOST_REASON, RunSweeper
from app.runtime_ids import runtime_id
from runtime.bus.keys import TenantKeys
from tests.runtime.conftest import START, node

FLOW = ([START, node("log", "log", "log")], [{"source": "start", "target": "log"}])


def _sweeper(hub, grace_s: float = 0.0) -> RunSweeper:
    recorder = hub.recorders[0] if hub.recorders else hub.recorder()
    return RunSweeper(hub.db, hub.bus, recorder.events, grace_s=grace_s)


def _record_start(hub, flow_id):
    run_id = hub.start(flow_id, {"n": 1})
    recorder = hub.recorders[0] if hub.recorders else hub.recorder()
    hub_recorded = lambda: hub.run(run_id) is not None  # noqa: E731
    while not hub_recorded():
        recorder.run_once()
    return run_id


def test_a_run_whose_bookkeeping_vanished_is_closed(hub) -> None:
    flow_id = hub.flow(*FLOW)
    run_id = _record_start(hub, flow_id)
    assert hub.run(run_id).status == "running"
    hub.bus.redis.delete(TenantKeys(runtime_id(hub.tenant_id)).run(runtime_id(run_id)))
    assert _sweeper(hub).sweep() == 1
    run = hub.run(run_id)
    assert (run.status, run.error) == ("failed", LOST_REASON)
    assert run.finished_at is not None
    assert _sweeper(hub).sweep() == 0


def test_a_run_in_flight_is_left_alone(hub) -> None:
    flow_id = hub.flow(*FLOW)
    run_id = _record_start(hub, flow_id)
    assert _sweeper(hub).sweep() == 0
    assert hub.run(run_id).status == "running"


def test_a_young_run_is_left_alone(hub) -> None:
    flow_id = hub.flow(*FLOW)
    run_id = _record_start(hub, flow_id)
    hub.bus.redis.delete(TenantKeys(runtime_id(hub.tenant_id)).run(runtime_id(run_id)))
    assert _sweeper(hub, grace_s=3600).sweep() == 0


def test_a_finished_run_not_yet_recorded_is_not_taken_for_lost(hub) -> None:
    """The commit deleted the bookkeeping and emitted run.finished, which the recorder has not stored yet."""
    flow_id = hub.flow(*FLOW)
    run_id = _record_start(hub, flow_id)
    worker = hub.worker()
    tk = TenantKeys(runtime_id(hub.tenant_id))
    while hub.bus.redis.exists(tk.run(runtime_id(run_id))):
        worker.run_once()
    assert hub.run(run_id).status == "running"
    assert _sweeper(hub).sweep() == 0
    hub.drive(lambda: hub.finished(run_id))
    assert hub.run(run_id).status == "succeeded"
