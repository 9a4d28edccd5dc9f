"""Retention: exactly the runs past each tenant's limit go (with their steps and logs), nothing else; the space
comes back (SQLite's file shrinks, PostgreSQL's free space grows); figures for the admin page and /metrics."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import sqlite3
import uuid

import pytest
import redis
import sqlalchemy as sa

from app.control import retention as job
from app.control.context import serving
from app.errors import PermissionDeniedError, ValidationError
from app.runtime_ids import runtime_id
from app.services import accounts, activity, flows, retention
from app.storage import migrations
from app.storage.db import Database
from app.storage.models import Run, RunLogLine, StepExecution, Tenant
from app.storage.scoping import system_session, tenant_session
from runtime.bus.keys import TenantKeys
from runtime.bus.streams import StreamsBus
from tests.app.control.test_schedules import control
from tests.app.hub_runtime import HubRuntime

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
DEFAULT = retention.RetentionPolicy(days=30, runs=0)
# Random (incompressible) and small enough to stay in the row: what is measured is the table itself, not
# PostgreSQL's compressed side storage of large values.
BULKY = {"text": os.urandom(400).hex()}


def _runs(hub: HubRuntime, tenant_id: uuid.UUID, ages_days: list[float], status: str = "succeeded",
          steps: int = 1) -> list[uuid.UUID]:  # fmt: skip
    flow_id = flows.create_flow(hub.db, tenant_id, f"f {uuid.uuid4().hex[:4]}").id
    ids = []
    with tenant_session(hub.db.sessions, tenant_id) as session:
        for age in ages_days:
            at = NOW - dt.timedelta(days=age)
            run = Run(flow_id=flow_id, status=status, started_at=at, finished_at=at)
            session.add(run)
            session.flush()
            for n in range(steps):
                session.add(StepExecution(run_id=run.id, step_id=f"s{n}", component="log", function="log",
                                          status="succeeded", started_at=at, input=BULKY, output=[BULKY]))  # fmt: skip
                session.add(RunLogLine(run_id=run.id, step_id=f"s{n}", message="y" * 500))
            ids.append(run.id)
    return ids


def _left(hub: HubRuntime, tenant_id: uuid.UUID) -> set[uuid.UUID]:
    with tenant_session(hub.db.sessions, tenant_id) as session:
        return set(session.scalars(sa.select(Run.id)))


def _set(hub: HubRuntime, tenant_id: uuid.UUID, days: int | None, runs: int | None) -> None:
    with system_session(hub.db.sessions) as session:
        tenant = session.get(Tenant, tenant_id)
        tenant.retention_days, tenant.retention_runs = days, runs


def test_exactly_the_runs_past_each_tenants_limit_are_deleted(hub: HubRuntime) -> None:
    week, count, default = hub.tenant_id, hub.new_tenant("Counted"), hub.new_tenant("Default")
    _set(hub, week, 7, None)
    _set(hub, count, 0, 3)  # no age limit, the newest three runs
    old = _runs(hub, week, [10, 9.5, 8])
    young = _runs(hub, week, [6.9, 1, 0])
    running = _runs(hub, week, [20], status="running")  # never deleted while it may still finish
    counted = _runs(hub, count, [50, 40, 30, 3, 2, 1])
    kept_by_default = _runs(hub, default, [29, 10])
    past_default = _runs(hub, default, [31])

    report = job.apply_retention(hub.db, DEFAULT, now=NOW, batch=2)  # batches smaller than the work
    assert _left(hub, week) == set(young + running)
    assert _left(hub, count) == set(counted[3:])
    assert _left(hub, default) == set(kept_by_default)
    gone = old + counted[:3] + past_default
    assert (report.runs, report.steps, report.logs) == (len(gone), len(gone), len(gone))
    assert report.tenants[week.hex].runs == 3 and report.tenants[count.hex].runs == 3
    with system_session(hub.db.sessions) as session:
        assert (
            session.scalar(sa.select(sa.func.count(StepExecution.id)).where(StepExecution.run_id.in_(gone)))
            == 0
        )
        assert session.scalar(sa.select(sa.func.count(RunLogLine.id)).where(RunLogLine.run_id.in_(gone))) == 0
        kept = young + running + counted[3:] + kept_by_default
        assert session.scalar(sa.select(sa.func.count(StepExecution.id)).where(StepExecution.run_id.in_(kept))) \
            == len(kept)  # fmt: skip
    assert job.apply_retention(hub.db, DEFAULT, now=NOW).runs == 0  # nothing more to do


def test_a_replay_outlives_its_deleted_original(hub: HubRuntime) -> None:
    _set(hub, hub.tenant_id, 7, None)
    [original] = _runs(hub, hub.tenant_id, [10])
    [replay] = _runs(hub, hub.tenant_id, [1])
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        session.execute(sa.update(Run).where(Run.id == replay).values(replay_of_id=original))
    job.apply_retention(hub.db, DEFAULT, now=NOW)
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        assert session.get(Run, replay).replay_of_id is None


def _pg_free_space(hub: HubRuntime) -> int:
    with hub.db.engine.connect() as connection:
        connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        connection.commit()
        return sum(connection.exec_driver_sql(f"SELECT free_space FROM pgstattuple('{table}')").scalar()
                   for table in ("step_executions", "run_log_lines", "runs"))  # fmt: skip


def test_the_space_comes_back(hub: HubRuntime) -> None:
    _set(hub, hub.tenant_id, 7, None)
    _runs(hub, hub.tenant_id, [10] * 300, steps=2)
    _runs(hub, hub.tenant_id, [1] * 10)
    dialect = hub.db.engine.dialect.name
    before = job._sqlite_size(hub.db) if dialect == "sqlite" else _pg_free_space(hub)
    report = job.apply_retention(hub.db, DEFAULT, now=NOW)
    assert report.runs == 300 and report.bytes_freed > 300 * 2 * 1500
    if dialect == "sqlite":
        assert job._sqlite_size(hub.db) < before - 300 * 2 * 1500  # the file shrank
    else:
        assert _pg_free_space(hub) > before + 300 * 2 * 1500  # VACUUM made the rows' space reusable


def test_the_hourly_job_saves_its_figures(hub: HubRuntime) -> None:
    _set(hub, hub.tenant_id, 1, None)
    _runs(hub, hub.tenant_id, [400, 300])  # long before the job's own now
    context = dataclasses.replace(control(hub), retention=DEFAULT)
    with serving(context):
        job.run_retention()
    last = retention.last_report(hub.bus.redis)
    assert last is not None and last.runs == 2 and last.database == hub.db.engine.dialect.name
    assert retention.freed_for(last, hub.tenant_id).runs == 2
    assert retention.totals(hub.bus.redis)["runs"] >= 2
    text = activity.metrics(hub.db, hub.bus.redis).decode()
    assert "# TYPE hub_retention_deleted_runs_total counter" in text
    assert int(text.split("\nhub_retention_deleted_runs_total ", 1)[1].split("\n", 1)[0]) >= 2


def test_policy_defaults_overrides_and_who_may_change_it(hub: HubRuntime) -> None:
    view = retention.retention_of(hub.db, hub.tenant_id, DEFAULT)
    assert (view.own_days, view.own_runs, view.effective) == (None, None, DEFAULT)
    owner = accounts.create_user(hub.db, f"o-{uuid.uuid4().hex[:6]}@example.com", "a long password!!").id
    viewer = accounts.create_user(hub.db, f"v-{uuid.uuid4().hex[:6]}@example.com", "a long password!!").id
    accounts.add_member(hub.db, hub.tenant_id, owner, "owner")
    accounts.add_member(hub.db, hub.tenant_id, viewer, "viewer")
    view = retention.update_retention(hub.db, hub.tenant_id, 0, 1000, user_id=owner, default=DEFAULT)
    assert view.effective == retention.RetentionPolicy(0, 1000)
    assert view.effective.describe() == "the newest 1,000 runs"
    with pytest.raises(PermissionDeniedError):
        retention.update_retention(hub.db, hub.tenant_id, 1, None, user_id=viewer, default=DEFAULT)
    assert retention.parse_limit("", "Days", 10) is None
    assert retention.parse_limit("1,000", "Runs", 5000) == 1000
    with pytest.raises(ValidationError, match="Days: 'soon' is not a whole number"):
        retention.parse_limit("soon", "Days", 10)
    with pytest.raises(ValidationError, match="between 0"):
        retention.parse_limit("-1", "Days", 10)


def test_dead_letters_past_the_retention_go_with_the_runs(hub: HubRuntime) -> None:
    _set(hub, hub.tenant_id, 7, None)
    other = hub.new_tenant("Other")  # the default: 30 days
    dead = TenantKeys(runtime_id(hub.tenant_id)).dead
    others = TenantKeys(runtime_id(other)).dead
    for key in (dead, others):
        for age_days in (10, 8, 1):
            at_ms = int((NOW - dt.timedelta(days=age_days)).timestamp() * 1000)
            hub.bus.redis.xadd(key, {"m": "{}"}, id=f"{at_ms}-0")
    report = job.apply_retention(hub.db, DEFAULT, now=NOW, client=hub.bus.redis)
    assert hub.bus.redis.xlen(dead) == 1 and hub.bus.redis.xlen(others) == 3
    assert report.dead_letters == 2 and report.tenants[hub.tenant_id.hex].dead_letters == 2


def test_an_older_sqlite_file_is_not_vacuumed_behind_the_hubs_back(tmp_path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as raw:  # a file created before incremental vacuum was set on new files
        raw.execute("CREATE TABLE older (a)")
    migrations.upgrade(f"sqlite:///{path}")
    db = Database.connect(f"sqlite:///{path}")
    try:
        hub = HubRuntime(db, StreamsBus(redis.Redis()), None)  # only the database is used here
        _set(hub, hub.tenant_id, 7, None)
        _runs(hub, hub.tenant_id, [10] * 20)
        report = job.apply_retention(db, DEFAULT, now=NOW)
        assert report.runs == 20 and report.bytes_freed == 0  # deleted; the space is reused, not returned
        with db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA auto_vacuum").scalar() == 0  # no full VACUUM ran
    finally:
        db.dispose()
