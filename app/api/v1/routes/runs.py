"""/runs and /dead-letters: run history with step data and logs, replays, and messages that failed for good."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime

from app.api.v1.deps import Reader, Runner, Writer
from app.api.v1.schemas import (
    DeadLetterOut,
    LogLineOut,
    ReplayRequest,
    RunDetailOut,
    RunOut,
    RunPageOut,
    RunStarted,
    StepOut,
)
from app.services import run_history, runs
from app.services.run_history import RunFilter

router = APIRouter(tags=["runs"])

DeadLetterId = Annotated[str, Path(pattern=r"^\d{1,20}-\d{1,20}$", description="A stream entry id.")]


def _run(row: run_history.RunRow) -> RunOut:
    return RunOut.model_validate(row)


@router.get("/runs", response_model=RunPageOut, summary="List runs, newest first, a page at a time")
def list_runs(
    reader: Reader,
    flow_id: uuid.UUID | None = None,
    status: Literal["queued", "running", "succeeded", "failed", "partially_failed", "cancelled"]
    | None = None,
    trigger: str | None = Query(None, max_length=20, description="webhook, polling, manual, replay, ..."),
    since: Annotated[
        AwareDatetime | None, Query(description="With a time zone: 2026-11-01T00:00:00Z.")
    ] = None,
    until: Annotated[AwareDatetime | None, Query(description="With a time zone.")] = None,
    text: str = Query(
        "", max_length=200, description="Part of the flow's name or error, or a run id's start."
    ),
    include_tests: bool = False,
    older_than: str | None = Query(None, max_length=200),
    newer_than: str | None = Query(None, max_length=200),
    limit: int = Query(50, ge=1, le=500),
) -> RunPageOut:
    where = RunFilter(flow_id=flow_id, status=status, trigger=trigger, since=since, until=until, text=text,
                      include_tests=include_tests)  # fmt: skip
    page = run_history.list_runs(reader.hub.db, reader.tenant_id, where, older_than=older_than,
                                 newer_than=newer_than, limit=limit)  # fmt: skip
    return RunPageOut(runs=[_run(r) for r in page.rows], older=page.older, newer=page.newer)


@router.get("/runs/{run_id}", response_model=RunDetailOut, summary="A run with its steps' input and output")
def get_run(run_id: uuid.UUID, reader: Reader) -> RunDetailOut:
    return RunDetailOut.model_validate(run_history.run_detail(reader.hub.db, reader.tenant_id, run_id))


@router.get("/runs/{run_id}/steps", response_model=list[StepOut], summary="A run's step executions and data")
def list_steps(run_id: uuid.UUID, reader: Reader) -> list[StepOut]:
    detail = run_history.run_detail(reader.hub.db, reader.tenant_id, run_id)
    return [StepOut.model_validate(s) for s in detail.steps]


@router.get("/runs/{run_id}/logs", response_model=list[LogLineOut], summary="A run's log lines, oldest first")
def run_logs(
    run_id: uuid.UUID,
    reader: Reader,
    level: Literal["", "debug", "info", "warn", "warning", "error"] = "",
    text: str = Query("", max_length=200),
    after_id: int = Query(0, ge=0, le=2**62, description="The last `id` seen: the next lines after it."),
    limit: int = Query(500, ge=1, le=5000),
) -> list[LogLineOut]:
    lines = run_history.run_logs(reader.hub.db, reader.tenant_id, run_id, level=level, text=text,
                                 after_id=after_id, limit=limit)  # fmt: skip
    return [LogLineOut.model_validate(line) for line in lines]


@router.post("/runs/{run_id}/replay", response_model=RunStarted, status_code=202, summary="Replay a run")
def replay_run(run_id: uuid.UUID, body: ReplayRequest, runner: Runner) -> RunStarted:
    """Again from its first message, or (`from_failed_step`) from the step that failed, as a new run linked to
    this one."""
    new = runs.replay_run(runner.hub.db, runner.hub.bus, runner.tenant_id, run_id,
                          from_failed_step=body.from_failed_step, user_id=runner.user_id)  # fmt: skip
    return RunStarted(run_id=new)


@router.get("/dead-letters", response_model=list[DeadLetterOut], summary="Messages that failed for good")
def list_dead_letters(
    reader: Reader, flow_id: uuid.UUID | None = None, limit: int = Query(100, ge=1, le=1000)
) -> list[DeadLetterOut]:
    found = runs.list_dead_letters(reader.hub.bus, reader.tenant_id, flow_id, limit)
    return [DeadLetterOut.model_validate(d) for d in found]


@router.post("/dead-letters/{dead_letter_id}/replay", response_model=RunStarted, status_code=202,
             summary="Run a dead letter's step again")  # fmt: skip
def replay_dead_letter(dead_letter_id: DeadLetterId, runner: Runner) -> RunStarted:
    new = runs.replay_dead_letter(runner.hub.db, runner.hub.bus, runner.tenant_id, dead_letter_id,
                                  user_id=runner.user_id)  # fmt: skip
    return RunStarted(run_id=new)


@router.delete("/dead-letters/{dead_letter_id}", status_code=204, summary="Discard a dead letter")
def discard_dead_letter(dead_letter_id: DeadLetterId, editor: Writer) -> None:
    """Needs the `write` scope: the message is gone for good (a token that only starts runs cannot lose data)."""
    runs.discard_dead_letter(editor.hub.db, editor.hub.bus, editor.tenant_id, dead_letter_id,
                             user_id=editor.user_id)  # fmt: skip
