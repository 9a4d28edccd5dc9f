"""Starting runs by hand, and the dead letters of a tenant: list, replay (failed step onward), discard."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from app.errors import BackpressureError, NotFoundError
from app.runtime_ids import database_id, runtime_id
from app.services.plans import current_plan
from app.storage.db import Database
from app.storage.models import Flow, FlowVersion
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


def _backpressure(exc: BacklogFullError) -> BackpressureError:
    return BackpressureError(
        f"Too much work is waiting for this tenant ({exc}); nothing was started. Try again in a moment.",
        BACKPRESSURE_RETRY_S,
    )


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
    try:
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
    except BacklogFullError as exc:
        raise _backpressure(exc) from None
    except ConcurrencyLimitError as exc:
        raise BackpressureError(f"The flow is busy: {exc}. Try again when a run has finished.", 1) from None
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
) -> uuid.UUID:
    """Run the failed step again, and what follows it, as a new run linked to the original one.

    With use_current_version (the default) the flow's latest published version runs, so a fix made after the
    failure applies; when that version no longer has the failed step, the original version is used."""
    letter = bus.dead_letter(runtime_id(tenant_id), dead_id)
    if letter is None:
        raise NotFoundError("This dead letter does not exist any more (already replayed or discarded?).")
    env = letter.envelope
    version_id = env.version
    with tenant_session(db.sessions, tenant_id) as session:
        flow = session.get(Flow, database_id(env.flow))
        if flow is None:
            raise NotFoundError("The flow of this dead letter was deleted; discard the dead letter instead.")
        if use_current_version and flow.current_version_id is not None:
            current = session.get(FlowVersion, flow.current_version_id)
            if current is not None and any(n.get("id") == env.step for n in current.graph.get("nodes", [])):
                version_id = runtime_id(current.id)
    try:
        run = bus.replay(runtime_id(tenant_id), dead_id, version_id=version_id, run_id=uuid.uuid4().hex)
    except DeadLetterGoneError:
        raise NotFoundError("This dead letter was replayed or discarded meanwhile.") from None
    except BacklogFullError as exc:
        raise _backpressure(exc) from None
    except ConcurrencyLimitError as exc:
        raise BackpressureError(f"The flow is busy: {exc}. Try again when a run has finished.", 1) from None
    return database_id(run)


def discard_dead_letter(bus: StreamsBus, tenant_id: uuid.UUID, dead_id: str) -> None:
    if not bus.discard_dead_letter(runtime_id(tenant_id), dead_id):
        raise NotFoundError("This dead letter does not exist any more (already replayed or discarded?).")
