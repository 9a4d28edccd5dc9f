"""What the flow designer asks of the hub: the palette, how each node looks, the draft's problems, saving
(draft, then a version when the draft compiles), and the versions list. The UI and the API share these."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from app.errors import FlowInvalidError, NotFoundError
from app.services import flows
from app.services.catalog import DEFAULT_ICON, TenantCatalog, builtin_icon, latest_versions, list_components
from app.services.plans import TenantCredentials, compile_document, get_flow
from app.storage.db import Database
from app.storage.models import Flow, FlowVersion, User
from app.storage.scoping import tenant_session
from designer.palette import PaletteComponent, palette_items
from designer.view import NodeLook
from runtime.bus.streams import StreamsBus
from runtime.components.builtin import builtin_descriptors
from runtime.components.descriptor import Descriptor, FunctionDef, parse_descriptor
from runtime.flows.compiler import Problem


@dataclass(frozen=True)
class DesignerCatalog:
    """The components a tenant's flows may use, resolved the way the compiler resolves them."""

    components: dict[str, PaletteComponent]

    def function(self, component: str, function: str) -> FunctionDef | None:
        found = self.components.get(component)
        if found is None:
            return None
        return next((f for f in found.descriptor.functions if f.id == function), None)

    def descriptor(self, component: str) -> Descriptor | None:
        found = self.components.get(component)
        return found.descriptor if found else None

    def palette(self) -> list[dict[str, Any]]:
        return palette_items(self.components.values())

    def looks(self) -> dict[tuple[str, str], NodeLook]:
        looks = {}
        for component in self.components.values():
            for function in component.descriptor.functions:
                several = len(component.descriptor.functions) > 1
                looks[(component.descriptor.name, function.id)] = NodeLook(
                    title=component.descriptor.title,
                    subtitle=function.title if several else "",
                    icon=component.icon,
                    trigger=function.kind == "trigger",
                )
        return looks

    def is_trigger(self, node: dict[str, Any]) -> bool:
        function = self.function(str(node.get("component", "")), str(node.get("function", "")))
        return function is not None and function.kind == "trigger"


def designer_catalog(
    db: Database, tenant_id: uuid.UUID, pins: dict[str, str] | None = None
) -> DesignerCatalog:
    """`pins`: the draft's pinned versions of imported components (its steps show those versions' fields)."""
    resolver = TenantCatalog(db, tenant_id, pins)
    # The built-ins come from the code, as the compiler resolves them (their catalog rows only mirror it).
    icons = {name: builtin_icon(name) or DEFAULT_ICON for name in builtin_descriptors()}
    scopes: dict[str, str] = {}
    for entry in list_components(db, tenant_id):
        if entry.name in icons and entry.runtime == "builtin":
            continue
        icons.setdefault(entry.name, entry.icon or DEFAULT_ICON)
        if entry.scope == "tenant":  # a tenant's own component shadows a global one of the same name
            icons[entry.name], scopes[entry.name] = entry.icon or DEFAULT_ICON, "tenant"
    components = {}
    for name, icon in icons.items():
        spec = resolver.get(name)
        if spec is None:
            continue
        parsed = parse_descriptor(spec.descriptor, name=name)
        components[name] = PaletteComponent(parsed.descriptor, icon, scopes.get(name, "global"))
    return DesignerCatalog(components)


def trigger_of(graph: dict[str, Any], catalog: DesignerCatalog) -> dict[str, Any]:
    """The flow's trigger kind as its trigger node says (the flows list shows it)."""
    for node in graph.get("nodes") or []:
        function = catalog.function(str(node.get("component", "")), str(node.get("function", "")))
        if function is not None and function.kind == "trigger":
            kind = function.trigger_type or "manual"
            return {"kind": kind if kind in ("webhook", "polling", "manual") else "manual"}
    return {"kind": "manual"}


def draft_problems(
    db: Database,
    catalog: TenantCatalog,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID | None,
    graph: dict[str, Any],
) -> list[Problem]:
    """What the compiler finds wrong with the draft, as the publisher `user_id` would see it."""
    with tenant_session(db.sessions, tenant_id) as session:
        try:
            compile_document(
                {**graph, "trigger": {"kind": "manual"}}, catalog, TenantCredentials(session, user_id)
            )
        except FlowInvalidError as exc:
            return list(exc.problems)
    return []


@dataclass(frozen=True)
class SaveOutcome:
    lock_version: int
    version: int | None  # the version this save published; None when the draft has problems
    problems: list[Problem]


def save_design(
    db: Database,
    bus: StreamsBus,
    catalog: TenantCatalog,
    tenant_id: uuid.UUID,
    flow_id: uuid.UUID,
    graph: dict[str, Any],
    trigger: dict[str, Any],
    *,
    expected_lock_version: int,
    user_id: uuid.UUID | None,
    routes: Any,
) -> SaveOutcome:
    """Store the draft (a stale save is a ConflictError, never an overwrite); if it compiles, freeze it as a
    new version the runtime runs from now on. A draft with problems is kept, unpublished, so work is not lost."""
    saved = flows.save_draft(
        db, tenant_id, flow_id, graph, expected_lock_version=expected_lock_version, trigger=trigger,
        user_id=user_id,
    )  # fmt: skip
    problems = draft_problems(db, catalog, tenant_id, user_id, graph)
    if problems:
        return SaveOutcome(saved.lock_version, None, problems)
    try:
        version = flows.publish_flow(db, bus, catalog, tenant_id, flow_id, user_id=user_id, routes=routes,
                                     expected_lock_version=saved.lock_version)  # fmt: skip
    except FlowInvalidError as exc:  # the vault changed between the two looks
        return SaveOutcome(saved.lock_version, None, list(exc.problems))
    return SaveOutcome(saved.lock_version, version.number, [])


@dataclass(frozen=True)
class VersionView:
    number: int
    author: str
    saved_at: dt.datetime
    note: str
    current: bool


def list_versions(
    db: Database, tenant_id: uuid.UUID, flow_id: uuid.UUID, limit: int = 100
) -> list[VersionView]:
    """Newest first, with who saved each (a removed user shows as such)."""
    with tenant_session(db.sessions, tenant_id) as session:
        flow = get_flow(session, flow_id)
        rows = session.execute(
            sa.select(FlowVersion.id, FlowVersion.number, FlowVersion.created_at, FlowVersion.note,
                      FlowVersion.created_by)
            .where(FlowVersion.flow_id == flow.id)
            .order_by(FlowVersion.number.desc())
            .limit(limit)
        ).all()  # fmt: skip
        authors = _names(session, {r.created_by for r in rows if r.created_by})
        return [
            VersionView(r.number, authors.get(r.created_by, "a removed user") if r.created_by else "the hub",
                        r.created_at, r.note, r.id == flow.current_version_id)
            for r in rows
        ]  # fmt: skip


def _names(session: Any, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    found = session.execute(sa.select(User.id, User.display_name, User.email).where(User.id.in_(ids))).all()
    return {row.id: row.display_name or row.email for row in found}


def version_graph(db: Database, tenant_id: uuid.UUID, flow_id: uuid.UUID, number: int) -> dict[str, Any]:
    with tenant_session(db.sessions, tenant_id) as session:
        graph = session.scalar(
            sa.select(FlowVersion.graph).where(FlowVersion.flow_id == flow_id, FlowVersion.number == number)
        )
    if graph is None:
        raise NotFoundError(f"This flow has no version {number}.")
    return graph


def read_draft(db: Database, tenant_id: uuid.UUID, flow_id: uuid.UUID) -> tuple[str, dict[str, Any], int]:
    """(name, draft graph, lock version) as stored now. A draft saved before flows pinned their components gets
    the versions its published version runs, so that opening it never moves it to a newer import."""
    with tenant_session(db.sessions, tenant_id) as session:
        flow: Flow = get_flow(session, flow_id)
        name, graph, lock = flow.name, dict(flow.graph or {}), flow.lock_version
        published: dict[str, str] = {}
        if "pins" not in graph and flow.current_version_id is not None:
            version = session.get(FlowVersion, flow.current_version_id)
            published = dict(version.component_pins or {}) if version is not None else {}
    imported = latest_versions(db, tenant_id, published)  # built-ins follow the code: never pinned
    if imported:
        graph["pins"] = {name_: published[name_] for name_ in sorted(imported)}
    return name, graph, lock
