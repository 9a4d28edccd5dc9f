"""Flows: create, save the draft (optimistic lock), publish an immutable version the runtime can run."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from app.errors import ConflictError, FlowInvalidError, ValidationError
from app.runtime_ids import runtime_id
from app.services import audit, webhooks
from app.services.members import EDITORS, require_role
from app.services.plans import (
    TenantCredentials,
    compile_document,
    current_plan,
    flow_document,
    get_flow,
    imported_components,
    pinned,
    runnable_here,
)
from app.storage.db import Database
from app.storage.models import Flow, FlowStatus, FlowVersion, Run, Webhook
from app.storage.scoping import tenant_session
from runtime.bus.streams import StreamsBus
from runtime.components.spec import ComponentResolver
from runtime.flows.compiler import ExecutionPlan, Problem


def create_flow(
    db: Database,
    tenant_id: uuid.UUID,
    name: str,
    graph: dict[str, Any] | None = None,
    trigger: dict[str, Any] | None = None,
    *,
    user_id: uuid.UUID | None = None,
    known_graph: dict[str, Any] | None = None,
) -> Flow:
    """A new, inactive flow. Its credential references are checked as a save checks them (only those that
    `known_graph`, the flow it is copied from, did not already hold): none the creator may not use."""
    name = name.strip()
    if not name:
        raise ValidationError("A flow needs a name.")
    with tenant_session(db.sessions, tenant_id) as session:
        if graph is not None and user_id is not None:
            _check_new_credentials(TenantCredentials(session, user_id), known_graph, graph)
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
    user_id: uuid.UUID | None = None,
) -> Flow:
    """Store the draft being edited. A save based on an older read is refused, never merged silently; so is a
    credential the editor may not use (another member's personal one, another tenant's)."""
    try:
        with tenant_session(db.sessions, tenant_id) as session:
            flow = get_flow(session, flow_id)
            if flow.lock_version != expected_lock_version:
                raise _conflict(flow.name)
            _check_new_credentials(TenantCredentials(session, user_id), flow.graph, graph)
            flow.graph = graph
            if trigger is not None:
                flow.trigger = trigger
    except StaleDataError:
        raise _conflict("this flow") from None
    return flow


def _credential_refs(graph: dict[str, Any] | None) -> dict[str, str]:
    nodes = (graph or {}).get("nodes") or []
    return {
        str(n.get("id")): str(n["credential_id"])
        for n in nodes
        if isinstance(n, dict) and n.get("credential_id")
    }


def _nodes_by_id(graph: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    nodes = (graph or {}).get("nodes") or []
    return {str(n.get("id")): n for n in nodes if isinstance(n, dict)}


def _content(node: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a node does; where the designer draws it does not count."""
    return None if node is None else {k: v for k, v in node.items() if k not in ("position", "selected")}


def _check_new_credentials(
    credentials: TenantCredentials, saved: dict[str, Any] | None, graph: dict[str, Any]
) -> None:
    """Only what this save adds or changes is checked: a co-editor may keep (and move) a node that holds the
    owner's personal credential, not change it (publishing checks the whole flow as its publisher's)."""
    before = _credential_refs(saved)
    saved_nodes = _nodes_by_id(saved)
    new_nodes = _nodes_by_id(graph)
    problems = [
        Problem("unknown_credential", "The chosen credential does not exist or is not yours to use.", node_id)
        for node_id, ref in _credential_refs(graph).items()
        if credentials.kind_of(ref) is None
        # a new reference, or a changed node (component, fields) that would send the secret elsewhere
        and (before.get(node_id) != ref or _content(new_nodes[node_id]) != _content(saved_nodes.get(node_id)))
    ]
    if problems:
        nodes = ", ".join(p.node_id or "" for p in problems)
        raise FlowInvalidError(f"Not saved: node {nodes} uses a credential you may not use.", problems)


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
    routes: webhooks.RouteDefaults = webhooks.NO_DEFAULTS,
    expected_lock_version: int | None = None,
) -> FlowVersion:
    """Compile the draft; if it is valid, freeze it as the next version and hand it to the runtime (and to the
    routers: the flow's webhook URL starts the new version from now on)."""
    try:
        with tenant_session(db.sessions, tenant_id) as session:
            flow = get_flow(session, flow_id)
            if expected_lock_version is not None and flow.lock_version != expected_lock_version:
                raise _conflict(flow.name)  # the draft is not the one this publisher saved and checked
            document = flow_document(flow)
            components = pinned(components, document)
            plan = compile_document(document, components, TenantCredentials(session, user_id))
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
                imported_components(components, plan),
            )
            limit = plan.graph.concurrency
            bus.set_flow_limit(runtime_id(tenant_id), runtime_id(flow.id), limit and limit.limit,
                               limit.when_exceeded if limit else "queue")  # fmt: skip
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
    webhooks.sync_flow_routes(db, bus, components, tenant_id, flow_id, routes)
    return version


ImageCheck = Callable[[str], "str | None"]  # image -> why it cannot run here (None: it can)
Prepare = Callable[[ExecutionPlan], list[Problem]]  # start the plan's runners; what failed to start
Enqueue = Callable[[uuid.UUID, uuid.UUID, "uuid.UUID | None"], None]  # (tenant, flow, user): a control job

WAITING = "waiting for a worker to start its runners"
STOPPING_REASON = "its URL is closed; waiting for a worker to stop its runners"


def request_activation(
    db: Database,
    tenant_id: uuid.UUID,
    flow_id: uuid.UUID,
    *,
    enqueue: Enqueue,
    user_id: uuid.UUID | None = None,
) -> Flow:
    """Mark the flow starting and hand its activation to a worker (a control job, see app/control/): the job
    starts its runners, opens its URL and says active, or error with the reason. Asking again while it starts
    only queues another job, which finds nothing left to do."""
    flow = _require_published(db, tenant_id, flow_id)
    if flow.status == FlowStatus.ACTIVE.value:
        return flow
    set_status(db, tenant_id, flow_id, FlowStatus.STARTING, WAITING)
    enqueue(tenant_id, flow_id, user_id)
    return _fresh(db, tenant_id, flow_id)


def request_deactivation(
    db: Database,
    bus: StreamsBus,
    components: ComponentResolver,
    tenant_id: uuid.UUID,
    flow_id: uuid.UUID,
    *,
    enqueue: Enqueue,
    routes: webhooks.RouteDefaults = webhooks.NO_DEFAULTS,
    user_id: uuid.UUID | None = None,
) -> Flow:
    """Close the flow's URL at once (stopping traffic waits for nobody), then let a worker stop its runners
    and say inactive."""
    flow = _fresh(db, tenant_id, flow_id)
    if flow.status == FlowStatus.INACTIVE.value:
        return flow
    set_status(db, tenant_id, flow_id, FlowStatus.STOPPING, STOPPING_REASON)
    webhooks.sync_flow_routes(db, bus, components, tenant_id, flow_id, routes)
    enqueue(tenant_id, flow_id, user_id)
    return _fresh(db, tenant_id, flow_id)


def _require_published(db: Database, tenant_id: uuid.UUID, flow_id: uuid.UUID) -> Flow:
    flow = _fresh(db, tenant_id, flow_id)
    if flow.current_version_id is None:
        raise ValidationError(
            f"{flow.name!r} has no published version yet; save it without problems in the designer (that publishes a version), then activate it."
        )
    return flow


def _fresh(db: Database, tenant_id: uuid.UUID, flow_id: uuid.UUID) -> Flow:
    with tenant_session(db.sessions, tenant_id) as session:
        flow = get_flow(session, flow_id)
        session.expunge(flow)
        return flow


def set_status(
    db: Database,
    tenant_id: uuid.UUID,
    flow_id: uuid.UUID,
    status: FlowStatus,
    reason: str | None,
    expect: FlowStatus | None = None,
) -> bool:
    """Set the status (and its reason); with `expect`, only if the flow is still in that status, so that a job
    finishing an activation cannot overwrite a deactivation asked for meanwhile. Returns whether it changed.
    A statement, not an attribute change: the status is not the draft, so it must not bump its lock."""
    where = [Flow.id == flow_id]
    if expect is not None:
        where.append(Flow.status == expect.value)
    with tenant_session(db.sessions, tenant_id) as session:
        changed = session.execute(
            sa.update(Flow)
            .where(*where)
            .values(status=status.value, status_reason=reason)
            .execution_options(synchronize_session=False)
        ).rowcount
    return bool(changed)


def activate_flow(
    db: Database,
    bus: StreamsBus,
    components: ComponentResolver,
    tenant_id: uuid.UUID,
    flow_id: uuid.UUID,
    *,
    user_id: uuid.UUID | None = None,
    routes: webhooks.RouteDefaults = webhooks.NO_DEFAULTS,
    images: ImageCheck | None = None,
    prepare: Prepare | None = None,
    expect: FlowStatus | None = None,
) -> Flow:
    """The flow's production URL starts runs of its published version from now on. Refused, with the flow in
    error, when one of its steps cannot run on this hub (see _unrunnable) or its runners do not start
    (`prepare`). With `expect` (a control job), nothing changes unless the flow is still in that status."""
    _require_published(db, tenant_id, flow_id)
    _, plan = current_plan(db, components, tenant_id, flow_id)
    problems = _unrunnable(plan, images, tenant_id)
    if not problems and prepare is not None:
        problems = prepare(plan)
    if problems:
        reason = "Cannot run here: " + "; ".join(str(p) for p in problems)
        set_status(db, tenant_id, flow_id, FlowStatus.ERROR, reason, expect)
        raise FlowInvalidError(reason, problems)
    if set_status(db, tenant_id, flow_id, FlowStatus.ACTIVE, None, expect):
        _audit(db, tenant_id, flow_id, "flow.activated", user_id)
    webhooks.sync_flow_routes(db, bus, components, tenant_id, flow_id, routes)
    return _fresh(db, tenant_id, flow_id)


def deactivate_flow(
    db: Database,
    bus: StreamsBus,
    components: ComponentResolver,
    tenant_id: uuid.UUID,
    flow_id: uuid.UUID,
    *,
    user_id: uuid.UUID | None = None,
    routes: webhooks.RouteDefaults = webhooks.NO_DEFAULTS,
    expect: FlowStatus | None = None,
) -> Flow:
    """The production URL answers 410 from now on (it keeps its token: activating again brings it back)."""
    if set_status(db, tenant_id, flow_id, FlowStatus.INACTIVE, None, expect):
        _audit(db, tenant_id, flow_id, "flow.deactivated", user_id)
    webhooks.sync_flow_routes(db, bus, components, tenant_id, flow_id, routes)
    return _fresh(db, tenant_id, flow_id)


def _audit(
    db: Database, tenant_id: uuid.UUID, flow_id: uuid.UUID, action: str, user_id: uuid.UUID | None
) -> None:
    with tenant_session(db.sessions, tenant_id) as session:
        audit.record(session, action, tenant_id=tenant_id, actor_user_id=user_id, target_type="flow",
                     target_id=flow_id)  # fmt: skip


def _unrunnable(
    plan: ExecutionPlan, images: ImageCheck | None, tenant_id: uuid.UUID | None = None
) -> list[Problem]:
    """Steps no executor of this hub can run: an activation fails at once, naming them, rather than later on
    every message. `images`: the docker executor's check of an image (None when there is no docker executor)."""
    problems = []
    for step in plan.steps.values():
        component = step.component
        why = runnable_here(component, tenant_id) if tenant_id is not None else None
        if why and component.runtime != "docker":
            problems.append(Problem("not_installed", why, step.id))
        elif component.runtime == "docker" and images is None:
            problems.append(Problem("no_executor", f"{component.title!r} runs in a container image "
                                    f"({component.code or 'none named'}) and this hub has no docker executor "
                                    "(HUB_EXECUTOR=docker)", step.id))  # fmt: skip
        elif why:
            problems.append(Problem("image_not_added", why, step.id))
        elif component.runtime == "docker" and (missing := images(component.code)):
            problems.append(Problem("image_missing", f"{component.title!r}: {missing}", step.id))
    return problems


def duplicate_flow(
    db: Database, tenant_id: uuid.UUID, flow_id: uuid.UUID, *, user_id: uuid.UUID | None = None
) -> Flow:
    """A new, inactive flow with the same draft. URLs are not copied: the copy gets its own when asked."""
    with tenant_session(db.sessions, tenant_id) as session:
        source = get_flow(session, flow_id)
        name, graph, trigger = f"{source.name} (copy)"[:200], source.graph, source.trigger
    return create_flow(db, tenant_id, name, graph, trigger, user_id=user_id, known_graph=graph)


def rename_flow(
    db: Database, tenant_id: uuid.UUID, flow_id: uuid.UUID, name: str, *, user_id: uuid.UUID | None = None
) -> Flow:
    """A statement, not an attribute change: a new name is not a draft change, so someone editing the flow
    meanwhile can still save."""
    name = name.strip()
    if not name:
        raise ValidationError("A flow needs a name.")
    with tenant_session(db.sessions, tenant_id) as session:
        if user_id is not None:
            require_role(session, user_id, EDITORS, "rename flows")
        flow = get_flow(session, flow_id)
        session.execute(
            sa.update(Flow)
            .where(Flow.id == flow.id)
            .values(name=name[:200])
            .execution_options(synchronize_session=False)
        )
        audit.record(session, "flow.renamed", tenant_id=tenant_id, actor_user_id=user_id, target_type="flow",
                     target_id=flow.id, name=name[:200])  # fmt: skip
    return _fresh(db, tenant_id, flow_id)


def delete_flow(
    db: Database,
    bus: StreamsBus,
    tenant_id: uuid.UUID,
    flow_id: uuid.UUID,
    *,
    user_id: uuid.UUID | None = None,
    enqueue: Enqueue | None = None,
) -> str:
    """Delete an inactive flow with its versions, URLs (and their secrets) and run records; returns its name.
    Refused while it runs (active, starting, stopping) and while runs of it are in progress, test runs
    included: nothing is cut off mid-run. `enqueue`: a control job that releases what workers keep for it."""
    with tenant_session(db.sessions, tenant_id) as session:
        if user_id is not None:
            require_role(session, user_id, EDITORS, "delete flows")
        flow = get_flow(session, flow_id, lock=True)
        if flow.status not in (FlowStatus.INACTIVE.value, FlowStatus.ERROR.value):
            raise ConflictError(f"{flow.name!r} is {flow.status}: deactivate it before deleting it.")
        running = session.scalar(
            sa.select(sa.func.count(Run.id)).where(
                Run.flow_id == flow.id, Run.status.in_(("queued", "running"))
            )
        )
        if running:
            raise ConflictError(f"{flow.name!r} has {running} run{'s' if running != 1 else ''} in progress; "
                                "delete it once they have finished.")  # fmt: skip
        name = flow.name
        hooks = session.scalars(sa.select(Webhook).where(Webhook.flow_id == flow.id)).all()
        tokens = [h.token for h in hooks if h.revoked_at is None]
        versions = [
            runtime_id(v)
            for v in session.scalars(sa.select(FlowVersion.id).where(FlowVersion.flow_id == flow.id))
        ]
        for credential in webhooks.own_secrets(session, list(hooks)):  # a shared credential they name stays
            session.delete(credential)
        session.delete(flow)
        audit.record(session, "flow.deleted", tenant_id=tenant_id, actor_user_id=user_id, target_type="flow",
                     target_id=flow_id, name=name)  # fmt: skip
    # After the commit: a failed delete keeps its URLs working.
    webhooks.forget_routes(bus, tenant_id, tokens)
    bus.forget_flow(runtime_id(tenant_id), runtime_id(flow_id), versions)
    if enqueue is not None:
        enqueue(tenant_id, flow_id, user_id)
    return name
