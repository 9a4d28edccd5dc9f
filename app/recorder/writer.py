"""Write a folded batch of run events to SQL in one transaction, idempotently."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.recorder.events import FINISHED, RecordBatch, RunChange
from app.services import audit
from app.storage.db import Database
from app.storage.models import Flow, FlowVersion, Run, RunLogLine, RunStatus, StepExecution
from app.storage.scoping import system_session
from app.storage.types import utcnow

CHUNK = 500
T = TypeVar("T")


@dataclass(frozen=True)
class WriteResult:
    runs: int = 0
    steps: int = 0
    logs: int = 0
    ignored_runs: int = 0  # events of runs whose flow is not in this database (deleted, or not ours)
    new_steps: tuple[dict[str, Any], ...] = ()  # the step executions written now (not seen before)


def _chunks(values: list[T]) -> Iterator[list[T]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _existing(session: Session, column: Any, ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    found: set[uuid.UUID] = set()
    for chunk in _chunks(list(set(ids))):
        found.update(session.scalars(sa.select(column).where(column.in_(chunk))))
    return found


def write_batch(db: Database, batch: RecordBatch) -> WriteResult:
    if not batch.runs:
        return WriteResult()
    with system_session(db.sessions) as session:
        new_runs: list[Run] = []
        kept = _apply_runs(session, batch, new_runs)
        session.flush()  # step rows reference the runs
        _audit_credential_use(session, new_runs)
        rows = [row for row in batch.steps if (row["tenant_id"], row["run_id"]) in kept]
        present = _existing(session, StepExecution.id, (row["id"] for row in rows))
        new_rows = [row for row in rows if row["id"] not in present]
        # Log lines belong to their step execution's event: a step execution seen before had its lines written.
        lines = [line for row in new_rows for line in batch.logs.get(row["id"], ())]
        for chunk in _chunks(new_rows):
            session.execute(sa.insert(StepExecution), chunk)
        for chunk in _chunks(lines):
            session.execute(sa.insert(RunLogLine), chunk)
    return WriteResult(
        runs=len(kept),
        steps=len(new_rows),
        logs=len(lines),
        ignored_runs=len(batch.runs) - len(kept),
        new_steps=tuple(new_rows),
    )


def _owned(session: Session, model: Any, pairs: Iterable[tuple[uuid.UUID, uuid.UUID | None]]) -> set[tuple]:
    """Which (tenant, id) pairs exist as rows of `model` belonging to that tenant."""
    wanted = {(tenant, key) for tenant, key in pairs if key is not None}
    found: set[tuple] = set()
    for chunk in _chunks(list({key for _, key in wanted})):
        found.update(
            tuple(row)
            for row in session.execute(sa.select(model.tenant_id, model.id).where(model.id.in_(chunk)))
        )
    return found & wanted


def _apply_runs(session: Session, batch: RecordBatch, created: list[Run]) -> set[tuple[uuid.UUID, uuid.UUID]]:
    changes = list(batch.runs.values())
    runs = {}
    for chunk in _chunks(list({c.run_id for c in changes})):
        runs.update({run.id: run for run in session.scalars(sa.select(Run).where(Run.id.in_(chunk)))})
    flows = _owned(session, Flow, ((c.tenant_id, c.flow_id) for c in changes if c.run_id not in runs))
    versions = _owned(session, FlowVersion, ((c.tenant_id, c.version_id) for c in changes))
    originals = _owned(session, Run, ((c.tenant_id, c.replay_of) for c in changes))
    first_step = {}
    for row in batch.steps:
        first_step.setdefault((row["tenant_id"], row["run_id"]), row["started_at"])

    kept: set[tuple[uuid.UUID, uuid.UUID]] = set()
    for change in changes:
        key = (change.tenant_id, change.run_id)
        run = runs.get(change.run_id)
        if run is None:
            # A flow of another tenant, or a flow deleted meanwhile: never write across tenants.
            if (change.tenant_id, change.flow_id) not in flows:
                continue
            run = Run(
                id=change.run_id,
                tenant_id=change.tenant_id,
                flow_id=change.flow_id,
                flow_version_id=change.version_id
                if (change.tenant_id, change.version_id) in versions
                else None,
                status=RunStatus.RUNNING.value,
                started_at=change.started_at or first_step.get(key) or utcnow(),
            )
            session.add(run)
            runs[change.run_id] = run
            created.append(run)
        elif run.tenant_id != change.tenant_id:
            continue  # the run belongs to another tenant: this event may not touch it
        _merge(run, change, {r for t, r in originals if t == change.tenant_id})
        kept.add(key)
    return kept


def _audit_credential_use(session: Session, new_runs: list[Run]) -> None:
    """The audit log's "credential used": once per flow version, at its first run, for each credential the
    version uses. One indexed lookup per version seen in the batch (most batches: runs of versions that ran
    before, found at once)."""
    by_version: dict[uuid.UUID, list[Run]] = {}
    for run in new_runs:
        if run.flow_version_id is not None and not run.test_mode:
            by_version.setdefault(run.flow_version_id, []).append(run)
    for version_id, runs in by_version.items():
        earlier = session.scalar(
            sa.select(Run.id)
            .where(
                Run.flow_version_id == version_id,
                Run.id.not_in([r.id for r in runs]),
                Run.test_mode.is_(False),
            )
            .limit(1)
        )
        if earlier is not None:
            continue
        version = session.get(FlowVersion, version_id)
        first = min(runs, key=lambda r: (r.started_at, r.id))
        used = sorted({str(n["credential_id"]) for n in (version.graph or {}).get("nodes") or []
                       if isinstance(n, dict) and n.get("credential_id")})  # fmt: skip
        for credential_id in used:
            audit.record(session, "credential.used", tenant_id=first.tenant_id, target_type="credential",
                         target_id=credential_id, flow_id=str(first.flow_id), version=version.number,
                         run_id=str(first.id))  # fmt: skip


def _merge(run: Run, change: RunChange, originals: set[uuid.UUID]) -> None:
    if change.started_at is not None:
        run.started_at = change.started_at
        run.trigger_kind = change.trigger or run.trigger_kind
        run.test_mode = bool(change.test_mode)
        if change.replay_of in originals:
            run.replay_of_id = change.replay_of
    # A run once finished stays finished: a late duplicate of an earlier event cannot reopen it.
    if change.status is not None and run.status not in FINISHED:
        run.status = change.status
        run.finished_at = change.finished_at
    if change.error and not run.error:
        run.error = change.error
