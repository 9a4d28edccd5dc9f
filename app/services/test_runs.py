"""Test runs from the designer: the canvas as it is now (saved or not) runs once with sample input, in test
mode, without activating the flow; then each step's input, output and error are read back for the canvas."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from app.errors import BackpressureError, FlowInvalidError
from app.runtime_ids import runtime_id
from app.services.members import EDITORS, require_role
from app.services.plans import (
    TenantCredentials,
    compile_document,
    get_flow,
    imported_components,
    pinned,
    runnable_here,
)
from app.storage.db import Database
from app.storage.models import Run, StepExecution
from app.storage.scoping import tenant_session
from runtime.bus.streams import BacklogFullError, ConcurrencyLimitError, StreamsBus
from runtime.components.spec import ComponentResolver
from runtime.flows.compiler import Problem

DRAFT_TTL_S = 86_400  # the frozen canvas outlives the run and its retries, then Redis forgets it
FINISHED = ("succeeded", "failed", "partially_failed", "cancelled")
FAILED_STEPS = ("failed", "dead")


def start_test_run(
    db: Database,
    bus: StreamsBus,
    components: ComponentResolver,
    tenant_id: uuid.UUID,
    flow_id: uuid.UUID,
    graph: dict[str, Any],
    data: Any,
    *,
    user_id: uuid.UUID | None,
) -> uuid.UUID:
    """Freeze `graph` as a version that exists only in Redis and start a test run of it with `data` as its
    trigger's output. Raises FlowInvalidError (the problems) when the graph cannot run, with the credentials
    `user_id` may use."""
    with tenant_session(db.sessions, tenant_id) as session:
        if user_id is not None:  # the hub's own callers pass none; a person must be allowed to edit
            require_role(session, user_id, EDITORS, "start test runs")
        flow = get_flow(session, flow_id)
        document = {**graph, "trigger": flow.trigger or {"kind": "manual"}}
        components = pinned(components, document)
        plan = compile_document(document, components, TenantCredentials(session, user_id))
        carried = imported_components(components, plan)
    refused = [Problem("image_not_added" if s.component.runtime == "docker" else "not_installed", why, s.id)
               for s in plan.steps.values() if (why := runnable_here(s.component, tenant_id))]  # fmt: skip
    if refused:
        raise FlowInvalidError("The test run was not started: " + "; ".join(str(p) for p in refused), refused)
    version = uuid.uuid4().hex
    tenant, flow_key = runtime_id(tenant_id), runtime_id(flow_id)
    bus.publish_version(tenant, flow_key, version, document, carried, ttl_s=DRAFT_TTL_S)
    run_id = uuid.uuid4()
    try:
        bus.start_run(
            tenant, flow_key, version, plan.entry, {"data": data}, run_id=runtime_id(run_id), test=True
        )
    except (BacklogFullError, ConcurrencyLimitError) as exc:
        raise BackpressureError(f"The test run was not started: {exc}. Try again in a moment.", 1) from None
    return run_id


@dataclass(frozen=True)
class StepOutcome:
    status: str  # succeeded | failed | running
    executions: int
    input: Any
    output: Any
    error: str
    truncated: bool
    duration_ms: float | None

    @property
    def label(self) -> str:
        if self.status == "failed":
            return f"✗ {self.error[:80]}" if self.error else "✗ failed"
        if self.status == "running":
            return "… retrying" if self.executions > 1 else "… running"
        times = f"{self.executions} times" if self.executions > 1 else "once"
        return f"✓ ran {times}" + (f", {self.duration_ms:.0f} ms" if self.duration_ms is not None else "")


@dataclass(frozen=True)
class TestRunView:
    status: str  # queued | running | succeeded | failed | partially_failed | cancelled | unknown
    error: str
    steps: dict[str, StepOutcome] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def test_run_view(db: Database, tenant_id: uuid.UUID, run_id: uuid.UUID) -> TestRunView:
    """What the recorder has stored of the run so far. A step that ran several times (a split's items, retries)
    shows its last execution's data; it failed if its last execution failed."""
    with tenant_session(db.sessions, tenant_id) as session:
        run = session.execute(sa.select(Run.status, Run.error).where(Run.id == run_id)).first()
        rows = session.scalars(
            sa.select(StepExecution).where(StepExecution.run_id == run_id).order_by(StepExecution.started_at)
        ).all()
        by_step: dict[str, list[StepExecution]] = {}
        for row in rows:
            by_step.setdefault(row.step_id, []).append(row)
        steps = {step: _outcome(executions) for step, executions in by_step.items()}
    if run is None:
        return TestRunView("queued" if not steps else "running", "", steps)
    return TestRunView(run.status, run.error or "", steps)


def _outcome(executions: list[StepExecution]) -> StepOutcome:
    last = executions[-1]
    failed = [e for e in executions if e.status in FAILED_STEPS]
    status = (
        "failed"
        if last.status in FAILED_STEPS
        else ("succeeded" if last.status == "succeeded" else "running")
    )
    shown = failed[-1] if status == "failed" and failed else last
    return StepOutcome(status, len(executions), shown.input, shown.output, shown.error or "", shown.truncated,
                       shown.duration_ms)  # fmt: skip
