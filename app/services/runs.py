"""Starting runs by hand, replaying a recorded run (whole, or from its failed step onward), and the dead letters
of a tenant: list, replay, discard."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from app.errors import BackpressureError, NotFoundError, ValidationError
from app.runtime_ids import database_id, runtime_id
from app.services.members import EDITORS, require_role
from app.services.plans import current_plan
from app.storage.db import Database
from app.storage.models import Flow, FlowVersion, Run, StepExecution
from app.storage.scoping import tenant_session
from runtime.bus.streams import BacklogFullError, ConcurrencyLimitError, DeadLetterGoneError, StreamsBus
from runtime.components.spec import ComponentResolver

BACKPRESSURE_RETRY_S = 5


@dataclass(frozen=True)
class DeadLetterView:
    id: str
    flow_id: uuid.UUID
    run_id: uuid.UUID
    step_id: str
    attempt: int
    error: str
    failed_at: dt.datetime
    data: Any


@contextlib.contextmanager
def _admitted() -> Iterator[None]:
    """Starting a run: the tenant's full backlog or the flow's concurrency limit become a BackpressureError."""
    try:
        yield
    except BacklogFullError as exc:
        raise BackpressureError(
            f"Too much work is waiting for this tenant ({exc}); nothing was started. Try again in a moment.",
            BACKPRESSURE_RETRY_S,
        ) from None
    except ConcurrencyLimitError as exc:
        raise BackpressureError(f"The flow is busy: {exc}. Try again when a run has finished.", 1) from None


def start_manual_run(
    db: Database,
    bus: StreamsBus,
    components: ComponentResolver,
    tenant_id: uuid.UUID,
    flow_id: uuid.UUID,
    data: Any = None,
    *,
    test: bool = False,
) -> uuid.UUID:
    """Run the flow's published version with `data` as its trigger's output; returns the run id."""
    version, plan = current_plan(db, components, tenant_id, flow_id)
    run_id = uuid.uuid4()
    with _admitted():
        bus.start_run(
            runtime_id(tenant_id),
            runtime_id(flow_id),
            runtime_id(version.id),
            plan.entry,
            {"data": data},
            run_id=runtime_id(run_id),
            trigger="manual",
            test=test,
        )
    return run_id


def list_dead_letters(
    bus: StreamsBus, tenant_id: uuid.UUID, flow_id: uuid.UUID | None = None, limit: int = 100
) -> list[DeadLetterView]:
    views = []
    for letter in bus.dead_letters(runtime_id(tenant_id), count=10_000 if flow_id else limit):
        env = letter.envelope
        view = DeadLetterView(
            id=letter.entry_id,
            flow_id=database_id(env.flow),
            run_id=database_id(env.run),
            step_id=env.step,
            attempt=env.attempt,
            error=letter.error,
            failed_at=dt.datetime.fromtimestamp(letter.failed_at_ms / 1000, dt.UTC),
            data=(env.body or {}).get("data"),
        )
        if flow_id is None or view.flow_id == flow_id:
            views.append(view)
    return views[:limit]


def replay_dead_letter(
    db: Database,
    bus: StreamsBus,
    tenant_id: uuid.UUID,
    dead_id: str,
    *,
    use_current_version: bool = True,
    user_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Run the failed step again, and what follows it, as a new run linked to the original one.

    With use_current_version (the default) the flow's latest published version runs, so a fix made after the
    failure applies; when that version no longer has the failed step, the original version is used."""
    _may_change(db, tenant_id, user_id, "replay dead letters")
    letter = bus.dead_letter(runtime_id(tenant_id), dead_id)
    if letter is None:
        raise NotFoundError("This dead letter does not exist any more (already replayed or discarded?).")
    env = letter.envelope
    try:
        flow_id = database_id(env.flow)
    except ValueError:
        raise NotFoundError("The flow of this dead letter is not one of this hub's; discard it.") from None
    try:
        current = _version_with_step(db, tenant_id, flow_id, env.version, env.step)
    except NotFoundError:
        raise NotFoundError(
            "The flow of this dead letter was deleted; discard the dead letter instead."
        ) from None
    version_id = current if use_current_version else env.version
    try:
        with _admitted():
            run = bus.replay(runtime_id(tenant_id), dead_id, version_id=version_id, run_id=uuid.uuid4().hex)
    except DeadLetterGoneError:
        raise NotFoundError("This dead letter was replayed or discarded meanwhile.") from None
    return database_id(run)


def discard_dead_letter(
    db: Database, bus: StreamsBus, tenant_id: uuid.UUID, dead_id: str, *, user_id: uuid.UUID | None = None
) -> None:
    _may_change(db, tenant_id, user_id, "discard dead letters")
    if not bus.discard_dead_letter(runtime_id(tenant_id), dead_id):
        raise NotFoundError("This dead letter does not exist any more (already replayed or discarded?).")


def _is_preview(value: Any) -> bool:
    """What the recorder keeps of a value too large for the history (runtime/processing.py `_preview`)."""
    return (
        isinstance(value, dict) and value.get("truncated") is True and isinstance(value.get("preview"), str)
    )


def _may_change(db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID | None, doing: str) -> None:
    if user_id is not None:
        with tenant_session(db.sessions, tenant_id) as session:
            require_role(session, user_id, EDITORS, doing)


def _version_with_step(
    db: Database, tenant_id: uuid.UUID, flow_id: uuid.UUID, original: str, step: str
) -> str:
    """The flow's current version when it still has `step` (so a fix made after the failure applies), else the
    version the run had."""
    with tenant_session(db.sessions, tenant_id) as session:
        flow = session.get(Flow, flow_id)
        if flow is None:
            raise NotFoundError("The flow of this run was deleted; it cannot be replayed.")
        if flow.current_version_id is not None:
            current = session.get(FlowVersion, flow.current_version_id)
            if current is not None and any(n.get("id") == step for n in current.graph.get("nodes", [])):
                return runtime_id(current.id)
    return original


def _dead_letter_of(bus: StreamsBus, tenant_id: uuid.UUID, run_id: uuid.UUID, step: str) -> str | None:
    """The run's dead letter for `step`, read through all of the tenant's in pages (retention bounds them)."""
    after = "-"
    while page := bus.dead_letters(runtime_id(tenant_id), count=1000, after=after):
        for letter in page:
            if letter.envelope.run == runtime_id(run_id) and letter.envelope.step == step:
                return letter.entry_id
        after = page[-1].entry_id
    return None


def replay_run(
    db: Database,
    bus: StreamsBus,
    tenant_id: uuid.UUID,
    run_id: uuid.UUID,
    *,
    from_failed_step: bool = False,
    user_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Run a recorded run again as a new run linked to it; returns the new run's id.

    The whole run starts again with the input its first step received. From the failed step, only that step and
    what follows run, with the message it failed on: taken from its dead letter when there is one (the whole
    message, attachments included), else from the recorded input. The flow's current version runs when it still
    has that step, so a fix made after the failure applies."""
    _may_change(db, tenant_id, user_id, "replay runs")
    with tenant_session(db.sessions, tenant_id) as session:
        run = session.get(Run, run_id)
        if run is None:
            raise NotFoundError(
                "This run does not exist (or belongs to another tenant, or was deleted by retention)."
            )
        flow_id, test_mode = run.flow_id, run.test_mode
        original = runtime_id(run.flow_version_id) if run.flow_version_id else ""
        steps = sa.select(StepExecution).where(StepExecution.run_id == run_id)
        if from_failed_step:
            start = session.scalars(
                steps.where(StepExecution.status == "dead").order_by(StepExecution.started_at.desc()).limit(1)
            ).first()
            if start is None:
                raise ValidationError(
                    "This run has no failed step to replay from; replay the whole run instead."
                )
        else:
            # The run's first message carries the run's id as its message id (see StreamsBus.start_run).
            start = session.scalars(
                steps.where(StepExecution.message_id == runtime_id(run_id))
                .order_by(StepExecution.attempt, StepExecution.started_at)
                .limit(1)
            ).first()
            if start is None:
                raise ValidationError("No step of this run was recorded, so its input is unknown; start the flow "
                                      "again instead.")  # fmt: skip
        step, data = start.step_id, start.input
        # The flag says the input or the output was cut; only a cut input (the recorder's preview) matters here.
        truncated = start.truncated and _is_preview(data)
    if from_failed_step:
        dead_id = _dead_letter_of(bus, tenant_id, run_id, step)
        if dead_id is not None:
            return replay_dead_letter(db, bus, tenant_id, dead_id)  # the role was checked above
    if truncated:
        raise ValidationError(f"The input of step {step!r} was larger than what the run history keeps, so it "
                              "cannot be replayed from the record.")  # fmt: skip
    version = _version_with_step(db, tenant_id, flow_id, original, step)
    if not version or bus.load_version(runtime_id(tenant_id), version) is None:
        raise ValidationError("The version this run used is gone and the current one has no such step; publish "
                              f"a version with step {step!r} first.")  # fmt: skip
    new_run = uuid.uuid4()
    with _admitted():
        bus.start_run(
            runtime_id(tenant_id), runtime_id(flow_id), version, step, {"data": data},
            run_id=runtime_id(new_run), trigger="replay", test=test_mode, replay_of=runtime_id(run_id),
        )  # fmt: skip
    return new_run
