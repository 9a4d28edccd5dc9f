"""The home page's figures: runs per hour by status, error rate, duration percentiles, the flows failing most."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from app.services import flows
from app.services.dashboard import dashboard, percentile
from app.storage.db import Database
from app.storage.models import Run
from app.storage.scoping import tenant_session

NOW = dt.datetime(2026, 11, 29, 12, 30, tzinfo=dt.UTC)


def _run(hub, flow_id: uuid.UUID, hours_ago: float, status: str, ms: float = 100, test: bool = False) -> None:
    at = NOW - dt.timedelta(hours=hours_ago)
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        session.add(Run(flow_id=flow_id, status=status, started_at=at, test_mode=test,
                        finished_at=None if status == "running" else at + dt.timedelta(milliseconds=ms)))  # fmt: skip


def test_the_last_24_hours_by_hour_status_and_flow(hub) -> None:
    orders = flows.create_flow(hub.db, hub.tenant_id, "Orders").id
    invoices = flows.create_flow(hub.db, hub.tenant_id, "Invoices").id
    for ms in (100, 200, 300, 400):
        _run(hub, orders, 0.2, "succeeded", ms)  # this hour (12:00)
    _run(hub, orders, 0.2, "failed", 1000)
    _run(hub, invoices, 3.1, "partially_failed", 50)  # 09:00
    _run(hub, invoices, 3.1, "failed", 60)
    _run(hub, invoices, 3.1, "running")
    _run(hub, invoices, 30, "failed")  # yesterday: outside the window
    _run(hub, orders, 1, "failed", test=True)  # test runs are not the tenant's traffic

    board = dashboard(hub.db, hub.tenant_id, now=NOW)
    assert len(board.hours) == 24 and board.hours[-1].hour == "12:00" and board.hours[0].hour == "13:00"
    last, nine = board.hours[-1], board.hours[-4]
    assert (last.succeeded, last.failed, last.other, last.error_rate) == (4, 1, 0, 20.0)
    assert (nine.hour, nine.succeeded, nine.failed, nine.other, nine.error_rate) == ("09:00", 0, 2, 1, 100.0)
    assert (board.runs, board.failed, board.error_rate) == (8, 3, 42.9)
    by_name = {d.name: d for d in board.durations}
    assert (by_name["Orders"].runs, by_name["Orders"].p50_ms, by_name["Orders"].p95_ms) == (5, 300, 1000)
    assert [(f.name, f.failed) for f in board.failing] == [("Invoices", 2), ("Orders", 1)]


def test_another_tenant_sees_none_of_it(hub) -> None:
    _run(hub, flows.create_flow(hub.db, hub.tenant_id, "Orders").id, 1, "failed")
    board = dashboard(hub.db, hub.new_tenant("Other"), now=NOW)
    assert (board.runs, board.failing, board.durations) == (0, [], [])


def test_percentile() -> None:
    assert percentile([], 0.5) == 0
    assert percentile([1, 2, 3, 4], 0.5) == 2 and percentile(list(range(1, 101)), 0.95) == 95


def test_hours_are_utc_whatever_the_database_sessions_time_zone(hub) -> None:
    if hub.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no session time zone")
    orders = flows.create_flow(hub.db, hub.tenant_id, "Orders").id
    _run(hub, orders, 0.2, "succeeded")  # 12:18 UTC
    url = hub.db.engine.url.set(query={"options": "-c timezone=Asia/Kolkata"})  # +05:30
    kolkata = Database.connect(url.render_as_string(hide_password=False))
    try:
        board = dashboard(kolkata, hub.tenant_id, now=NOW)
    finally:
        kolkata.dispose()
    assert (board.hours[-1].hour, board.hours[-1].succeeded) == ("12:00", 1)
