"""Reading the run history: the runs list (filtered, keyset-paginated), one run with its step executions,
its log lines, and the failed-run counts the Flows page shows.

Pages are keyset pages over (started_at, id), newest first: a deep page costs what the first one does, and a
run recorded meanwhile does not shift the rows under the reader as an offset would."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.errors import HubError, NotFoundError, ValidationError
from app.recorder.events import LEVEL_ALIASES, level_of
from app.runtime_ids import runtime_id
from app.storage.db import Database
from app.storage.models import Flow, FlowVersion, Run, RunLogLine, RunStatus, StepExecution
from app.storage.scoping import tenant_session
from runtime.bus.streams import StreamsBus

PAGE_SIZE = 50
LOG_PAGE = 500
FAILED = (RunStatus.FAILED.value, RunStatus.PARTIALLY_FAILED.value)
LEVELS = ("debug", "info", "warn", "error")  # a filter shows its level and the ones after it


@dataclass(frozen=True)
class RunFilter:
    flow_id: uuid.UUID | None = None
    status: str | None = None
    trigger: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    text: str = ""  # part of the flow's name or the run's error, or the start of the run's id
    include_tests: bool = False


@dataclass(frozen=True)
class RunRow:
    id: uuid.UUID
    flow_id: uuid.UUID
    flow_name: str
    status: str
    trigger: str
    test: bool
    started_at: dt.datetime
    finished_at: dt.datetime | None
    error: str | None
    replay_of_id: uuid.UUID | None

    @property
    def duration_ms(self) -> float | None:
        if self.finished_at is None:
            return None
        return max(0.0, (self.finished_at - self.started_at).total_seconds() * 1000)


@dataclass(frozen=True)
class RunPage:
    rows: list[RunRow]
    older: str | None  # the cursor of the next page back in time; None on the oldest page
    newer: str | None  # the cursor of the page before; None on the newest page


@dataclass(frozen=True)
class StepRow:
    id: uuid.UUID
    step_id: str
    component: str
    function: str
    attempt: int
    status: str
    executor: str
    instance: str | None
    started_at: dt.datetime
    duration_ms: float | None
    input: Any
    output: Any
    truncated: bool
    error: str | None


@dataclass(frozen=True)
class RunDetail:
    run: RunRow
    version: int | None  # the version's number; None when the version was deleted
    steps: list[StepRow]
    replays: list[RunRow]  # runs started as replays of this one, newest first


@dataclass(frozen=True)
class LogLine:
    id: int
    step_id: str | None
    ts: dt.datetime
    level: str
    message: str


# -- cursors ------------------------------------------------------------------------------------------
def encode_cursor(started_at: dt.datetime, run_id: uuid.UUID) -> str:
    return f"{started_at.astimezone(dt.UTC).isoformat()}~{run_id.hex}"


def decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        when, run_id = cursor.split("~", 1)
        return dt.datetime.fromisoformat(when), uuid.UUID(hex=run_id)
    except ValueError:
        raise ValidationError("This page link is damaged; go back to the first page of runs.") from None


# -- the runs list ------------------------------------------------------------------------------------
def _columns() -> sa.Select:
    # Runs alone: a page is read from the (tenant, started_at, id) index and stops after a page, however many
    # runs the tenant has; joining the flows would let the planner read all of the tenant's runs flow by flow.
    return sa.select(Run.id, Run.flow_id, Run.status, Run.trigger_kind, Run.test_mode, Run.started_at,
                     Run.finished_at, Run.error, Run.replay_of_id)  # fmt: skip


def _rows(session: Session, found: Sequence[Any]) -> list[RunRow]:
    """Rows with their flow's name (one query for the page's flows)."""
    ids = {row.flow_id for row in found}
    names = dict(session.execute(sa.select(Flow.id, Flow.name).where(Flow.id.in_(ids))).all()) if ids else {}
    return [RunRow(row.id, row.flow_id, names.get(row.flow_id, "(deleted flow)"), row.status, row.trigger_kind,
                   row.test_mode, row.started_at, row.finished_at, row.error, row.replay_of_id)
            for row in found]  # fmt: skip


def _filtered(session: Session, query: sa.Select, where: RunFilter) -> sa.Select:
    if where.flow_id is not None:
        query = query.where(Run.flow_id == where.flow_id)
    if where.status:
        if where.status not in {s.value for s in RunStatus}:
            raise ValidationError(f"Unknown run status {where.status!r}.")
        # "failed" takes in the partly failed runs too, as the failed counts on the Flows page do.
        wanted = FAILED if where.status == RunStatus.FAILED.value else (where.status,)
        query = query.where(Run.status.in_(wanted))
    if where.trigger:
        query = query.where(Run.trigger_kind == where.trigger)
    if where.since is not None:
        query = query.where(Run.started_at >= where.since)
    if where.until is not None:
        query = query.where(Run.started_at < where.until)
    if not where.include_tests:
        query = query.where(Run.test_mode.is_(False))
    text = where.text.strip()
    if text:
        named = session.scalars(sa.select(Flow.id).where(Flow.name.icontains(text, autoescape=True))).all()
        matches = [Run.error.icontains(text, autoescape=True)]
        if named:
            matches.append(Run.flow_id.in_(named))
        hex_part = text.replace("-", "").lower()
        if 4 <= len(hex_part) <= 32 and all(c in "0123456789abcdef" for c in hex_part):
            matches.append(_id_prefix(hex_part))
        query = query.where(sa.or_(*matches))
    return query


def _id_prefix(hex_part: str) -> sa.ColumnElement[bool]:
    """Runs whose id starts with `hex_part`: a range of ids, so the primary key's index answers it."""
    low = uuid.UUID(hex=hex_part.ljust(32, "0"))
    high = uuid.UUID(hex=hex_part.ljust(32, "f"))
    return sa.and_(Run.id >= low, Run.id <= high)


def list_runs(
    db: Database,
    tenant_id: uuid.UUID,
    where: RunFilter = RunFilter(),
    *,
    older_than: str | None = None,
    newer_than: str | None = None,
    limit: int = PAGE_SIZE,
) -> RunPage:
    """One page of runs, newest first: the first page, the page after `older_than` or the page before
    `newer_than` (both cursors from an earlier page)."""
    limit = max(1, min(limit, 500))
    key = sa.tuple_(Run.started_at, Run.id)
    with tenant_session(db.sessions, tenant_id) as session:
        query = _filtered(session, _columns(), where)
        if newer_than is not None:
            query = query.where(key > sa.tuple_(*decode_cursor(newer_than)))
            found = session.execute(query.order_by(Run.started_at, Run.id).limit(limit + 1)).all()
            more_newer = len(found) > limit
            rows = _rows(session, list(reversed(found[:limit])))
            has_newer, has_older = more_newer, True
        else:
            if older_than is not None:
                query = query.where(key < sa.tuple_(*decode_cursor(older_than)))
            found = session.execute(
                query.order_by(Run.started_at.desc(), Run.id.desc()).limit(limit + 1)
            ).all()
            rows = _rows(session, found[:limit])
            has_newer, has_older = older_than is not None, len(found) > limit
    if not rows:
        return RunPage([], None, None)
    return RunPage(
        rows,
        encode_cursor(rows[-1].started_at, rows[-1].id) if has_older else None,
        encode_cursor(rows[0].started_at, rows[0].id) if has_newer else None,
    )


def failed_counts(db: Database, tenant_id: uuid.UUID, since: dt.datetime) -> dict[uuid.UUID, int]:
    """Failed (and partially failed) runs per flow started since `since`, test runs left out."""
    with tenant_session(db.sessions, tenant_id) as session:
        found = session.execute(
            sa.select(Run.flow_id, sa.func.count(Run.id))
            .where(Run.status.in_(FAILED), Run.started_at >= since, Run.test_mode.is_(False))
            .group_by(Run.flow_id)
        ).all()
    return {flow_id: count for flow_id, count in found}


# -- one run ------------------------------------------------------------------------------------------
def _step(row: StepExecution) -> StepRow:
    return StepRow(row.id, row.step_id, row.component, row.function, row.attempt, row.status, row.executor,
                   row.instance, row.started_at, row.duration_ms, row.input, row.output, row.truncated,
                   row.error)  # fmt: skip


def run_detail(db: Database, tenant_id: uuid.UUID, run_id: uuid.UUID) -> RunDetail:
    with tenant_session(db.sessions, tenant_id) as session:
        found = session.execute(_columns().where(Run.id == run_id)).first()
        if found is None:
            raise NotFoundError(
                "This run does not exist (or belongs to another tenant, or was deleted by retention)."
            )
        version_id = session.scalar(sa.select(Run.flow_version_id).where(Run.id == run_id))
        version = session.scalar(sa.select(FlowVersion.number).where(FlowVersion.id == version_id))
        steps = session.scalars(
            sa.select(StepExecution)
            .where(StepExecution.run_id == run_id)
            .order_by(StepExecution.started_at, StepExecution.attempt, StepExecution.id)
        ).all()
        replays = session.execute(
            _columns().where(Run.replay_of_id == run_id).order_by(Run.started_at.desc()).limit(20)
        ).all()
        return RunDetail(
            _rows(session, [found])[0], version, [_step(s) for s in steps], _rows(session, replays)
        )


def run_logs(
    db: Database,
    tenant_id: uuid.UUID,
    run_id: uuid.UUID,
    *,
    level: str = "",
    text: str = "",
    after_id: int = 0,
    limit: int = LOG_PAGE,
) -> list[LogLine]:
    """The run's log lines in order, those of `level` and more severe, containing `text` (any case); after
    `after_id` for the lines that arrived since the last read."""
    query = sa.select(RunLogLine).where(RunLogLine.run_id == run_id, RunLogLine.id > after_id)
    if level:
        level = level_of(level)
        if level not in LEVELS:
            raise ValidationError(f"Unknown log level {level!r}; one of {', '.join(LEVELS)}.")
        shown = list(LEVELS[LEVELS.index(level) :])
        shown += [alias for alias, meant in LEVEL_ALIASES.items() if meant in shown]
        # Lines recorded before levels were normalised may be in any case.
        query = query.where(sa.func.lower(RunLogLine.level).in_(shown))
    if text.strip():
        query = query.where(RunLogLine.message.icontains(text.strip(), autoescape=True))
    with tenant_session(db.sessions, tenant_id) as session:
        if session.scalar(sa.select(Run.id).where(Run.id == run_id)) is None:
            raise NotFoundError(
                "This run does not exist (or belongs to another tenant, or was deleted by retention)."
            )
        lines = session.scalars(query.order_by(RunLogLine.id).limit(max(1, min(limit, 5000)))).all()
        return [LogLine(line.id, line.step_id, line.ts, level_of(line.level), line.message) for line in lines]


@dataclass
class RunSnapshot:
    """One read of a run for its page: the run, or the fact that it started and is not recorded yet, and its
    log lines after the ones already shown."""

    detail: RunDetail | None = None
    in_flight: bool = False
    lines: list[LogLine] = field(default_factory=list)
    error: str = ""


def read_run(
    db: Database,
    bus: StreamsBus,
    tenant_id: uuid.UUID,
    run_id: uuid.UUID | None,
    *,
    level: str = "",
    text: str = "",
    after_id: int = 0,
) -> RunSnapshot:
    if run_id is None:
        return RunSnapshot(error="This run does not exist: the address is not a run's id.")
    try:
        detail = run_detail(db, tenant_id, run_id)
    except NotFoundError as exc:
        # A run just started (a replay, a manual start) is in Redis before the recorder writes it.
        if bus.runs_in_flight(runtime_id(tenant_id), [runtime_id(run_id)]):
            return RunSnapshot(in_flight=True)
        return RunSnapshot(error=str(exc))
    try:
        lines = run_logs(db, tenant_id, run_id, level=level, text=text, after_id=after_id)
    except HubError as exc:
        return RunSnapshot(detail, error=str(exc))
    return RunSnapshot(detail, lines=lines)
