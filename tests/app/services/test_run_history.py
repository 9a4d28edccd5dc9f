"""The run history: the runs list (filters, keyset pages both ways), one run's steps and logs, failed counts."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from app.errors import NotFoundError, ValidationError
from app.services import flows
from app.services.run_history import (
    RunFilter,
    failed_counts,
    list_runs,
    read_run,
    run_detail,
    run_logs,
)
from app.storage.models import Run, RunLogLine
from app.storage.scoping import tenant_session
from tests.runtime.conftest import START, node

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def _seed(hub, flow_id: uuid.UUID, count: int, *, tenant_id=None, **values) -> list[uuid.UUID]:
    """`count` runs a minute apart from T0 on; returns their ids, oldest first."""
    ids = []
    with tenant_session(hub.db.sessions, tenant_id or hub.tenant_id) as session:
        for i in range(count):
            run = Run(flow_id=flow_id, status=values.get("status", "succeeded"),
                      trigger_kind=values.get("trigger", "webhook"), test_mode=values.get("test", False),
                      started_at=values.get("start", T0) + dt.timedelta(minutes=i),
                      finished_at=values.get("start", T0) + dt.timedelta(minutes=i, seconds=2),
                      error=values.get("error"))  # fmt: skip
            session.add(run)
            session.flush()
            ids.append(run.id)
    return ids


@pytest.fixture
def flow_id(hub) -> uuid.UUID:
    return flows.create_flow(hub.db, hub.tenant_id, "Orders to ERP").id


def test_pages_go_back_in_time_and_forward_again(hub, flow_id) -> None:
    ids = _seed(hub, flow_id, 12)
    newest_first = list(reversed(ids))
    first = list_runs(hub.db, hub.tenant_id, limit=5)
    assert [r.id for r in first.rows] == newest_first[:5] and first.newer is None
    second = list_runs(hub.db, hub.tenant_id, older_than=first.older, limit=5)
    assert [r.id for r in second.rows] == newest_first[5:10]
    last = list_runs(hub.db, hub.tenant_id, older_than=second.older, limit=5)
    assert [r.id for r in last.rows] == newest_first[10:] and last.older is None
    back = list_runs(hub.db, hub.tenant_id, newer_than=last.newer, limit=5)
    assert [r.id for r in back.rows] == newest_first[5:10]
    top = list_runs(hub.db, hub.tenant_id, newer_than=back.newer, limit=5)
    assert [r.id for r in top.rows] == newest_first[:5] and top.newer is None
    assert first.rows[0].flow_name == "Orders to ERP" and first.rows[0].duration_ms == 2000


def test_runs_started_in_the_same_instant_are_neither_lost_nor_repeated(hub, flow_id) -> None:
    ids = set()
    for _ in range(7):
        ids |= set(_seed(hub, flow_id, 1))  # all at T0
    seen, cursor = [], None
    while True:
        page = list_runs(hub.db, hub.tenant_id, older_than=cursor, limit=3)
        seen += [r.id for r in page.rows]
        if page.older is None:
            break
        cursor = page.older
    assert sorted(seen) == sorted(ids) and len(seen) == 7


def test_filters(hub, flow_id) -> None:
    other_flow = flows.create_flow(hub.db, hub.tenant_id, "Invoices").id
    ok = _seed(hub, flow_id, 3)
    failed = _seed(hub, flow_id, 2, status="failed", error="HTTP 503 from erp.example.com",
                   start=T0 + dt.timedelta(hours=1))  # fmt: skip
    manual = _seed(hub, other_flow, 1, trigger="manual", start=T0 + dt.timedelta(hours=2))
    partly = _seed(hub, other_flow, 1, status="partially_failed", start=T0 + dt.timedelta(hours=3))
    tests = _seed(hub, flow_id, 1, test=True)

    def ids(**where) -> set[uuid.UUID]:
        return {r.id for r in list_runs(hub.db, hub.tenant_id, RunFilter(**where)).rows}

    assert ids() == set(ok + failed + manual + partly)
    assert ids(include_tests=True) == set(ok + failed + manual + partly + tests)
    assert ids(status="failed") == set(failed + partly)  # as the Flows page counts failures
    assert ids(status="partially_failed") == set(partly)
    assert ids(trigger="manual") == set(manual)
    assert ids(flow_id=other_flow) == set(manual + partly)
    assert ids(since=T0 + dt.timedelta(minutes=30)) == set(failed + manual + partly)
    assert ids(until=T0 + dt.timedelta(minutes=30)) == set(ok)
    assert ids(text="erp.EXAMPLE") == set(failed)  # the error, any case
    assert ids(text="invoice") == set(manual + partly)  # the flow's name
    assert ids(text=manual[0].hex[:8]) == set(manual)  # the start of the run's id
    assert ids(text="100%") == set()  # % is literal
    with pytest.raises(ValidationError, match="Unknown run status"):
        ids(status="exploded")


def test_another_tenants_runs_are_not_listed_or_shown(hub, flow_id) -> None:
    [run_id] = _seed(hub, flow_id, 1)
    other = hub.new_tenant("Other")
    assert list_runs(hub.db, other).rows == []
    with pytest.raises(NotFoundError):
        run_detail(hub.db, other, run_id)
    with pytest.raises(NotFoundError):
        run_logs(hub.db, other, run_id)


def test_a_damaged_cursor_is_refused(hub) -> None:
    with pytest.raises(ValidationError, match="page link is damaged"):
        list_runs(hub.db, hub.tenant_id, older_than="yesterday")


def test_failed_counts_per_flow(hub, flow_id) -> None:
    other_flow = flows.create_flow(hub.db, hub.tenant_id, "Invoices").id
    _seed(hub, flow_id, 3, status="failed")
    _seed(hub, flow_id, 1, status="partially_failed")
    _seed(hub, flow_id, 1, status="failed", test=True)
    _seed(hub, flow_id, 1, status="failed", start=T0 - dt.timedelta(days=2))
    _seed(hub, other_flow, 2)
    assert failed_counts(hub.db, hub.tenant_id, T0 - dt.timedelta(hours=1)) == {flow_id: 4}


def test_a_run_with_its_steps_logs_and_replays(hub) -> None:
    flow_id = hub.flow(
        [START, node("shape", "jsonata", "transform", fields={"expression": "{'id': id}"}),
         node("note", "log", "log")],
        [{"source": "start", "target": "shape"}, {"source": "shape", "target": "note"}],
    )  # fmt: skip
    run = hub.run_to_end(flow_id, {"id": 3, "x": 1})
    detail = run_detail(hub.db, hub.tenant_id, run.id)
    assert detail.run.status == "succeeded" and detail.version == 1 and detail.replays == []
    assert [s.step_id for s in detail.steps] == ["start", "shape", "note"]
    shape = detail.steps[1]
    assert (shape.input, shape.output, shape.attempt, shape.executor) == (
        {"id": 3, "x": 1},
        [{"id": 3}],
        1,
        "inline",
    )
    lines = run_logs(hub.db, hub.tenant_id, run.id)
    assert lines and all(line.step_id == "note" for line in lines)
    assert run_logs(hub.db, hub.tenant_id, run.id, after_id=lines[-1].id) == []


def test_log_filters(hub, flow_id) -> None:
    [run_id] = _seed(hub, flow_id, 1)
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        for level, message in [("debug", "connecting"), ("info", "Sent order 17"), ("warning", "slow answer"),
                               ("error", "order 18 refused")]:  # fmt: skip
            session.add(RunLogLine(run_id=run_id, step_id="call", level=level, message=message))

    def messages(**how) -> list[str]:
        return [line.message for line in run_logs(hub.db, hub.tenant_id, run_id, **how)]

    assert messages() == ["connecting", "Sent order 17", "slow answer", "order 18 refused"]
    assert messages(level="warn") == ["slow answer", "order 18 refused"]  # "warning" is warn
    assert messages(level="error") == ["order 18 refused"]
    assert messages(text="ORDER") == ["Sent order 17", "order 18 refused"]
    assert messages(level="info", text="order") == ["Sent order 17", "order 18 refused"]
    assert run_logs(hub.db, hub.tenant_id, run_id, level="warn")[0].level == "warn"
    with pytest.raises(ValidationError, match="Unknown log level"):
        messages(level="loud")


def test_levels_in_any_case_are_filtered_alike(hub, flow_id) -> None:
    [run_id] = _seed(hub, flow_id, 1)
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        for level in ("ERROR", "Warning", "info"):  # as a runner or an older recorder stored them
            session.add(RunLogLine(run_id=run_id, step_id="call", level=level, message=level))
    assert [line.message for line in run_logs(hub.db, hub.tenant_id, run_id, level="warn")] == [
        "ERROR",
        "Warning",
    ]
    assert [line.level for line in run_logs(hub.db, hub.tenant_id, run_id)] == ["error", "warn", "info"]


def test_a_run_started_but_not_recorded_yet_is_in_flight(hub) -> None:
    flow_id = hub.flow([START], [])
    run_id = hub.start(flow_id, {"n": 1})  # no worker or recorder has run
    found = read_run(hub.db, hub.bus, hub.tenant_id, run_id)
    assert (found.in_flight, found.detail, found.error) == (True, None, "")
    gone = read_run(hub.db, hub.bus, hub.tenant_id, uuid.uuid4())
    assert not gone.in_flight and "does not exist" in gone.error
    assert "not a run's id" in read_run(hub.db, hub.bus, hub.tenant_id, None).error
    hub.drive(lambda: hub.finished(run_id))
    recorded = read_run(hub.db, hub.bus, hub.tenant_id, run_id)
    assert recorded.detail is not None and recorded.detail.run.status == "succeeded"
