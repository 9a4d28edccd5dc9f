"""Flows: create, save the draft (optimistic lock), publish an immutable version the runtime can run."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app.errors import ConflictError, FlowInvalidError, NotFoundError, ValidationError
from app.runtime_ids import runtime_id
from app.services import audit
from app.storage.db import Database
from app.storage.models import Credential, Flow, FlowVersion
from app.storage.scoping import tenant_session
from runtime.bus.streams import StreamsBus
from runtime.components.spec import ComponentResolver
from runtime.flows.compiler import ExecutionPlan, FlowValidationError, compile_flow


@dataclass(frozen=True)
class TenantCredentials:
    """The compiler's view of the vault: which kind a credential of this tenant is (None: not this tenant's)."""

    session: Session

    def kind_of(self, credential_id: str) -> str | None:
        try:
            key = uuid.UUID(credential_id)
        except ValueError:
            return None
        return self.session.scalar(sa.select(Credential.kind).where(Credential.id == key))


def flow_document(flow: Flow | FlowVersion) -> dict[str, Any]:
    return {**(flow.graph or {}), "trigger": flow.trigger or {}}


def get_flow(session: Session, flow_id: uuid.UUID) -> Flow:
    flow = session.get(Flow, flow_id)
    if flow is None:
        raise NotFoundError("This flow does not exist (or belongs to another tenant).")
    return flow


def create_flow(
    db: Database,
    tenant_id: uuid.UUID,
    name: str,
    graph: dict[str, Any] | None = None,
    trigger: dict[str, Any] | None = None,
    *,
    user_id: uuid.UUID | None = None,
) -> Flow:
    name = name.strip()
    if not name:
        raise ValidationError("A flow needs a name.")
    with tenant_session(db.sessions, tenant_id) as session:
        flow = Flow(
            tenant_id=tenant_id,
            name=name[:200],
            graph=graph or {"nodes": [], "edges": []},
            trigger=trigger or {"kind": "manual"},
            created_by=user_id,
        )
        session.add(flow)
        session.flush()
        audit.record(
            session,
            "flow.created",
            tenant_id=tenant_id,
            actor_user_id=user_id,
            target_type="flow",
            target_id=flow.id,
        )
    return flow


def save_draft(
    db: Database,
    tenant_id: uuid.UUID,
    flow_id: uuid.UUID,
    graph: dict[str, Any],
    *,
    expected_lock_version: int,
    trigger: dict[str, Any] | None = None,
) -> Flow:
    """Store the draft being edited. A save based on an older read is refused, never merged silently."""
    try:
        with tenant_session(db.sessions, tenant_id) as session:
            flow = get_flow(session, flow_id)
            if flow.lock_version != expected_lock_version:
                raise _conflict(flow.name)
            flow.graph = graph
            if trigger is not None:
                flow.trigger = trigger
    except StaleDataError:
        raise _conflict("this flow") from None
    return flow


def _conflict(name: str) -> ConflictError:
    return ConflictError(
        f"{name!r} was changed by someone else since you opened it; reload it and redo your change."
    )


def publish_flow(
    db: Database,
    bus: StreamsBus,
    components: ComponentResolver,
    tenant_id: uuid.UUID,
    flow_id: uuid.UUID,
    *,
    user_id: uuid.UUID | None = None,
    note: str = "",
) -> FlowVersion:
    """Compile the draft; if it is valid, freeze it as the next version and hand it to the runtime."""
    try:
        with tenant_session(db.sessions, tenant_id) as session:
            flow = get_flow(session, flow_id)
            document = flow_document(flow)
            plan = _compile(document, components, TenantCredentials(session))
            latest = session.scalar(
                sa.select(sa.func.max(FlowVersion.number)).where(FlowVersion.flow_id == flow.id)
            )
            version = FlowVersion(
                tenant_id=tenant_id,
                flow_id=flow.id,
                number=(latest or 0) + 1,
                graph=flow.graph,
                trigger=flow.trigger,
                component_pins={s.component.name: s.component.version for s in plan.steps.values()},
                note=note,
                created_by=user_id,
            )
            session.add(version)
            session.flush()
            # Redis first: if publishing fails, the transaction rolls back and no version points at nothing.
            bus.publish_version(
                runtime_id(tenant_id),
                runtime_id(flow.id),
                runtime_id(version.id),
                document,
                _imported(components, plan),
            )
            # A statement, not an attribute change: publishing leaves the draft alone, so it must not bump the
            # draft's lock version under an editor who still has it open.
            session.execute(
                sa.update(Flow)
                .where(Flow.id == flow.id)
                .values(current_version_id=version.id)
                .execution_options(synchronize_session=False)
            )
            audit.record(
                session,
                "flow.published",
                tenant_id=tenant_id,
                actor_user_id=user_id,
                target_type="flow",
                target_id=flow.id,
                version=version.number,
            )
    except IntegrityError:
        raise ConflictError(
            "This flow was published by someone else at the same moment; reload it and publish again."
        ) from None
    return version


def _imported(components: ComponentResolver, plan: ExecutionPlan) -> dict[str, Any]:
    """The imported components the plan uses, pinned (a resolver that knows them says so via `imported`)."""
    describe = getattr(components, "imported", None)
    if describe is None:
        return {}
    pins = {step.component.name: describe(step.component.name) for step in plan.steps.values()}
    return {name: pin for name, pin in pins.items() if pin is not None}


def _compile(
    document: dict[str, Any], components: ComponentResolver, credentials: TenantCredentials
) -> ExecutionPlan:
    try:
        return compile_flow(document, components, credentials)
    except FlowValidationError as exc:
        raise FlowInvalidError(f"The flow cannot run: {exc}", exc.problems) from None


def current_plan(
    db: Database, components: ComponentResolver, tenant_id: uuid.UUID, flow_id: uuid.UUID
) -> tuple[FlowVersion, ExecutionPlan]:
    """The flow's published version and its plan; NotFoundError when it was never published."""
    with tenant_session(db.sessions, tenant_id) as session:
        flow = get_flow(session, flow_id)
        if flow.current_version_id is None:
            raise NotFoundError(f"{flow.name!r} has no published version yet; publish it before running it.")
        version = session.get(FlowVersion, flow.current_version_id)
        assert version is not None
        plan = _compile(flow_document(version), components, TenantCredentials(session))
    return version, plan
