"""The run recorder: runs, step executions and log lines in SQL from the runtime's events, exactly once."""

from __future__ import annotations

import orjson
import sqlalchemy as sa

from app.recorder.events import step_execution_id
from app.runtime_ids import database_id, runtime_id
from app.storage.models import Run, StepExecution
from app.storage.scoping import system_session
from runtime.bus.keys import TenantKeys
from tests.runtime.conftest import LINEAR, START, node


def test_linear_run_is_recorded(hub) -> None:
    flow_id = hub.flow(*LINEAR)
    run = hub.run_to_end(flow_id, {"price": 2.5, "qty": 4})
    assert run.status == "succeeded"
    assert run.trigger_kind == "manual"
    assert run.flow_version_id is not None
    assert run.finished_at >= run.started_at
    assert run.error is None
    steps = hub.steps(run.id)
    assert [(s.step_id, s.attempt, s.status) for s in steps] == [
        ("start", 1, "succeeded"),
        ("shape", 1, "succeeded"),
        ("log", 1, "succeeded"),
    ]
    shape = steps[1]
    assert (shape.component, shape.function, shape.executor) == ("jsonata", "transform", "inline")
    assert shape.input == {"price": 2.5, "qty": 4}
    assert shape.output == [{"total": 10}]
    assert shape.duration_ms is not None and shape.finished_at >= shape.started_at
    assert [(line.step_id, line.level, line.message) for line in hub.logs(run.id)] == [
        ("log", "info", "{'total': 10}")
    ]


def test_retries_are_recorded_per_attempt(hub) -> None:
    flow_id = hub.flow(
        [
            START,
            node(
                "call", "flaky", "call", fields={"fail_times": 2}, settings={"retry": {"base_delay_s": 0.01}}
            ),
        ],
        [{"source": "start", "target": "call"}],
    )
    run = hub.run_to_end(flow_id, {"n": 1})
    assert run.status == "succeeded"
    calls = [s for s in hub.steps(run.id) if s.step_id == "call"]
    assert [(s.attempt, s.status) for s in calls] == [(1, "retrying"), (2, "retrying"), (3, "succeeded")]
    assert calls[0].error == "flaky failure 1"


def test_failed_run_records_the_error(hub) -> None:
    flow_id = hub.flow(
        [START, node("call", "flaky", "broken", settings={"retry": {"max_attempts": 1}})],
        [{"source": "start", "target": "call"}],
    )
    run = hub.run_to_end(flow_id, {"n": 1})
    assert run.status == "failed"
    assert run.error == "call: the service is broken"
    assert [s.status for s in hub.steps(run.id)] == ["succeeded", "dead"]


def test_partially_failed_run(hub) -> None:
    flow_id = hub.flow(
        [
            START,
            node("each", "split", "split", fields={"path": "items"}),
            node("check", "jsonata", "transform", fields={"expression": "$number(v)"}),
        ],
        [{"source": "start", "target": "each"}, {"source": "each", "target": "check"}],
    )
    # $number("x") fails: one branch dies, the other finishes.
    run = hub.run_to_end(flow_id, {"items": [{"v": "1"}, {"v": "x"}]})
    assert run.status == "partially_failed"
    assert run.error.startswith("check: ")


def test_recording_twice_changes_nothing(hub) -> None:
    """A recorder that died after writing and before acknowledging: another one records the same events again."""
    flow_id = hub.flow(*LINEAR)
    hub.worker()
    first = hub.recorder("first")
    run_id = hub.start(flow_id, {"price": 1, "qty": 1})
    for _ in range(10):
        hub.workers[0].run_once()
    tenant = runtime_id(hub.tenant_id)
    entries = first.events.read("first", [tenant], 100, 10)
    assert entries
    first._write(entries)  # written, never acknowledged: the recorder "dies" here
    second = hub.recorder("second", reclaim_idle_ms=0)
    second.run_once()
    assert hub.finished(run_id)
    assert len(hub.steps(run_id)) == 3
    assert len(hub.logs(run_id)) == 1
    assert hub.bus.redis.xpending(TenantKeys(tenant).events, "recorder")["pending"] == 0


def test_step_execution_ids_are_stable() -> None:
    assert step_execution_id("r", "s", "m", 1) == step_execution_id("r", "s", "m", 1)
    assert step_execution_id("r", "s", "m", 1) != step_execution_id("r", "s", "m", 2)


def test_events_of_unknown_flows_are_acknowledged_not_stored(hub) -> None:
    """A flow deleted while it ran, or a producer that is not this hub: its events must not block the others."""
    tenant = runtime_id(hub.tenant_id)
    hub.bus.publish_version(tenant, "f" * 32, "a" * 32, {"nodes": [START], "edges": []})
    hub.bus.start_run(tenant, "f" * 32, "a" * 32, "start", {"data": 1})
    flow_id = hub.flow(*LINEAR)
    run = hub.run_to_end(flow_id, {"price": 1, "qty": 1})
    assert run.status == "succeeded"
    with system_session(hub.db.sessions) as session:
        assert session.scalar(sa.select(sa.func.count(Run.id))) == 1
    assert hub.bus.redis.xpending(TenantKeys(tenant).events, "recorder")["pending"] == 0


def test_a_malformed_entry_is_set_aside_and_the_rest_recorded(hub) -> None:
    flow_id = hub.flow(*LINEAR)
    tenant = runtime_id(hub.tenant_id)
    run_id = hub.start(flow_id, {"price": 1, "qty": 1})
    tk = TenantKeys(tenant)
    broken = b'[{"t": "step.finished", "run": "%s", "flow": "%s"}]' % (
        runtime_id(run_id).encode(),
        runtime_id(flow_id).encode(),
    )
    hub.bus.redis.xadd(tk.events, {"e": broken})
    hub.drive(lambda: hub.finished(run_id))
    rejected = hub.bus.redis.xrange(tk.rejected_events)
    assert len(rejected) == 1
    assert rejected[0][1][b"e"] == broken.replace(b" ", b"")
    assert b"step" in rejected[0][1][b"error"]
    assert len(hub.steps(run_id)) == 3
    assert hub.recorders[0].stats.rejected == 1


def test_an_entry_that_is_not_json_is_set_aside_and_the_recorder_goes_on(hub) -> None:
    flow_id = hub.flow(*LINEAR)
    tk = TenantKeys(runtime_id(hub.tenant_id))
    hub.bus.ensure_tenant(runtime_id(hub.tenant_id))
    hub.bus.redis.xadd(tk.events, {"e": b'[{"t": "step.finished", "started": 17642925\xe2\x80\xa2]'})
    run_id = hub.start(flow_id, {"price": 1, "qty": 1})
    hub.drive(lambda: hub.finished(run_id))
    [(_, fields)] = hub.bus.redis.xrange(tk.rejected_events)
    assert fields[b"error"] == b"the entry is not valid JSON" and b"17642925" in fields[b"e"]
    assert hub.recorders[0].stats.rejected == 1


def test_a_tenant_cannot_record_into_another_tenants_flow(hub) -> None:
    other = hub.new_tenant("Other")
    flow_id = hub.flow(*LINEAR)
    # Events in the other tenant's stream that name this tenant's flow.
    other_key = runtime_id(other)
    hub.bus.publish_version(
        other_key, runtime_id(flow_id), "b" * 32, {"nodes": LINEAR[0], "edges": LINEAR[1]}
    )
    forged = hub.bus.start_run(
        other_key, runtime_id(flow_id), "b" * 32, "start", {"data": {"price": 1, "qty": 1}}
    )
    real = hub.start(flow_id, {"price": 1, "qty": 1})
    hub.drive(lambda: hub.finished(real))
    with system_session(hub.db.sessions) as session:
        assert session.get(Run, database_id(forged)) is None
        assert (
            session.scalar(sa.select(sa.func.count(StepExecution.id)).where(StepExecution.tenant_id == other))
            == 0
        )


def test_forged_events_in_another_tenants_stream_change_nothing(hub) -> None:
    flow_id = hub.flow(*LINEAR)
    run_id = hub.start(flow_id, {"price": 1, "qty": 1})
    other = runtime_id(hub.new_tenant("Other"))
    hub.bus.ensure_tenant(other)
    forged = [
        {
            "t": "run.finished",
            "run": runtime_id(run_id),
            "status": "cancelled",
            "ts": 1,
            "started": 1,
            "failed": 0,
        },
        {
            "t": "step.failed",
            "run": runtime_id(run_id),
            "flow": runtime_id(flow_id),
            "version": "0" * 32,
            "step": "x",
            "mid": "m",
            "attempt": 1,
            "status": "dead",
            "started": 1,
            "ms": 1,
            "error": "forged",
        },
    ]
    # In the same batch as the real events, and first.
    hub.bus.redis.xadd(TenantKeys(other).events, {"e": orjson.dumps(forged)})
    hub.drive(lambda: hub.finished(run_id))
    run = hub.run(run_id)
    assert (run.status, run.error) == ("succeeded", None)
    assert [s.step_id for s in hub.steps(run_id)] == ["start", "shape", "log"]
    with system_session(hub.db.sessions) as session:
        assert (
            session.scalar(sa.select(sa.func.count(StepExecution.id)).where(StepExecution.error == "forged"))
            == 0
        )


def test_a_nul_character_in_one_run_does_not_lose_the_others(hub) -> None:
    """PostgreSQL refuses NUL in JSONB; the events of a whole worker batch share one entry."""
    flow_id = hub.flow(*LINEAR)
    bad = hub.start(flow_id, {"price": 1, "qty": 1, "text": "a\x00b"})
    good = hub.start(flow_id, {"price": 2, "qty": 1})
    hub.drive(lambda: hub.finished(bad) and hub.finished(good))
    assert hub.run(bad).status == hub.run(good).status == "succeeded"
    assert len(hub.steps(bad)) == len(hub.steps(good)) == 3
    assert hub.steps(bad)[0].input["text"] in ("ab", "a\x00b")  # cleaned where the database refuses NUL
    assert hub.recorders[0].stats.rejected == 0
