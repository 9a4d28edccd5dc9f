"""The content repository: templates (a flow without credentials, each credential it needs kept as a slot with its
kind), the gallery of a tenant's own and the hub's shipped ones, documents to export and import, and making a
flow from a template or an imported document with a credential picked for each slot."""

from __future__ import annotations

import datetime as dt
import importlib.resources
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
import pydantic
import sqlalchemy as sa

from app.errors import NotFoundError, PermissionDeniedError, ValidationError
from app.services import audit, designer, flows
from app.services.credentials import visible_credential
from app.services.flow_export import FORMAT as FLOW_FORMAT
from app.services.flow_export import export_flow
from app.services.members import EDITORS, require_role, role_of
from app.storage.db import Database
from app.storage.models import Template, User
from app.storage.scoping import system_session, tenant_session
from app.vault.store import Vault
from runtime.flows.schema import FlowGraph

FORMAT = "integration-hub.template/1"
MAX_BYTES = 2 * 1024 * 1024
# Shipped templates keep the same id across restarts and hubs: derived from their file's name.
GALLERY_NAMESPACE = uuid.UUID("5b0c3a52-27d4-4f6e-9a51-6f3b1f1c1e01")


@dataclass(frozen=True)
class Slot:
    """A credential the flow needs: which node, and what kind of credential fits it."""

    node_id: str
    node_name: str
    component: str
    kind: str
    component_name: str | None = None  # for "fields" credentials: the component whose fields they are

    def fits(self, kind: str, component_name: str | None) -> bool:
        """Whether a credential of this kind (and, for component fields, of this component) can fill the slot."""
        return kind == self.kind and (
            not self.component_name or kind != "fields" or component_name == self.component_name
        )

    @property
    def label(self) -> str:
        what = f"{self.component_name} fields" if self.kind == "fields" and self.component_name else self.kind
        return f"{self.node_name or self.node_id}: {what}"


@dataclass(frozen=True)
class Document:
    """A flow or template document, checked: its graph is a valid flow without credential ids."""

    name: str
    description: str
    graph: dict[str, Any]  # nodes keep `credential_needed` where a slot is
    slots: tuple[Slot, ...]
    source_format: str


@dataclass(frozen=True)
class TemplateView:
    id: uuid.UUID
    name: str
    description: str
    scope: str  # "global" (shipped with the hub) or "tenant"
    trigger: str
    steps: int
    slots: tuple[Slot, ...]
    created_by: str
    updated_at: dt.datetime


@dataclass(frozen=True)
class Instantiated:
    flow_id: uuid.UUID
    unmapped: tuple[Slot, ...] = field(default=())  # slots left without a credential: the draft says so


# -- documents ----------------------------------------------------------------------------------------------------
def _foreign(document: dict[str, Any]) -> str:
    if "nodes" in document and "connections" in document:
        return (
            "This looks like an n8n workflow; only Integration Hub flow and template exports can be imported."
        )
    if "graph" in document and "type" in document and "format" not in document:
        return "This looks like an Open Integration Hub flow; only Integration Hub exports can be imported."
    return (
        f"This file is not an Integration Hub flow or template (its 'format' is {document.get('format')!r}; "
        f"expected {FLOW_FORMAT!r} or {FORMAT!r})."
    )


def parse_document(raw: str | bytes | dict[str, Any]) -> Document:
    """Check an uploaded document. Every refusal says what is wrong with the file; nothing is stored here."""
    if isinstance(raw, str | bytes):
        if len(raw) > MAX_BYTES:
            raise ValidationError(
                f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB; is it an export?"
            )
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValidationError(f"The file is not JSON ({exc}).") from None
    else:
        try:
            size = len(orjson.dumps(raw))
        except TypeError:  # orjson.JSONEncodeError: e.g. an integer beyond 64 bits
            raise ValidationError(
                "The document holds a value that cannot be stored (a number beyond 64 bits?)."
            ) from None
        if size > MAX_BYTES:
            raise ValidationError(
                f"The document is larger than {MAX_BYTES // (1024 * 1024)} MB; is it an export?"
            )
    if not isinstance(raw, dict):
        raise ValidationError("The file is JSON but not an exported flow or template (expected an object).")
    if raw.get("format") not in (FLOW_FORMAT, FORMAT):
        raise ValidationError(_foreign(raw))
    graph = raw.get("graph")
    if not isinstance(graph, dict):
        raise ValidationError("The document has no 'graph' object: it was cut or edited by hand.")
    nodes = graph.get("nodes")
    if not isinstance(nodes, list) or not all(isinstance(n, dict) for n in nodes):
        raise ValidationError("The document's graph has no list of nodes.")
    slots, clean_nodes = [], []
    for node in nodes:
        node = {
            k: v for k, v in node.items() if k != "credential_id"
        }  # another tenant's id means nothing here
        need = node.pop("credential_needed", None)
        if need is not None:
            if not isinstance(need, dict) or not isinstance(need.get("kind"), str):
                raise ValidationError(
                    f"Node {node.get('id')!r}: 'credential_needed' must name a credential kind."
                )
            component_name = need.get("component")
            slots.append(Slot(str(node.get("id")), str(node.get("name") or ""), str(node.get("component")),
                              need["kind"], component_name if isinstance(component_name, str) else None))  # fmt: skip
        clean_nodes.append(node)
    try:
        checked = FlowGraph.model_validate({**graph, "nodes": clean_nodes})
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValidationError(f"The document's flow is not valid: {where}: {first['msg']}.") from None
    stored = checked.model_dump(mode="json", exclude={"trigger"}, exclude_none=True)
    by_id = {slot.node_id: slot for slot in slots}
    for node in stored["nodes"]:
        slot = by_id.get(node["id"])
        if slot is not None:
            node["credential_needed"] = {"kind": slot.kind} | (
                {"component": slot.component_name} if slot.component_name else {}
            )
    name = str(raw.get("name") or "").strip()[:200] or "Imported flow"
    return Document(
        name, str(raw.get("description") or "")[:10_000], stored, tuple(slots), str(raw["format"])
    )


def _document(row: Template) -> dict[str, Any]:
    return {"format": FORMAT, "name": row.name, "description": row.description, "graph": row.graph}


# -- the gallery --------------------------------------------------------------------------------------------------
def _stored_slots(row: Template) -> tuple[Slot, ...]:
    """The slots saved with the template (listing never re-validates every graph)."""
    slots = []
    for raw in row.credential_slots or []:
        try:
            slots.append(Slot(**raw))
        except TypeError:  # written by a later version with more keys: read what this one knows
            slots.append(Slot(**{k: raw.get(k) for k in ("node_id", "node_name", "component", "kind")}))
    return tuple(slots)


def _view(row: Template, author: str | None) -> TemplateView:
    graph = row.graph or {}
    return TemplateView(row.id, row.name, row.description, "global" if row.tenant_id is None else "tenant",
                        str((row.trigger or {}).get("kind") or "manual"), len(graph.get("nodes") or []),
                        _stored_slots(row), author or ("the hub" if row.tenant_id is None else "a removed user"),
                        row.updated_at)  # fmt: skip


def list_templates(db: Database, tenant_id: uuid.UUID, search: str = "") -> list[TemplateView]:
    """The tenant's own templates, then the hub's, each by name."""
    with tenant_session(db.sessions, tenant_id) as session:
        query = sa.select(Template, User.email).outerjoin(User, User.id == Template.created_by)
        if search.strip():
            query = query.where(
                sa.func.lower(Template.name).contains(search.strip().lower(), autoescape=True)
            )
        rows = session.execute(
            query.order_by(Template.tenant_id.is_(None), sa.func.lower(Template.name))
        ).all()
        return [_view(row, email) for row, email in rows]


def _get(session, template_id: uuid.UUID) -> Template:
    row = session.get(Template, template_id)
    if row is None:
        raise NotFoundError("This template does not exist (or belongs to another tenant).")
    return row


def get_template(db: Database, tenant_id: uuid.UUID, template_id: uuid.UUID) -> tuple[TemplateView, dict]:
    """The template and its graph."""
    with tenant_session(db.sessions, tenant_id) as session:
        row = _get(session, template_id)
        author = (
            session.scalar(sa.select(User.email).where(User.id == row.created_by)) if row.created_by else None
        )
        return _view(row, author), dict(row.graph or {})


def export_template(
    db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID, template_id: uuid.UUID
) -> dict[str, Any]:
    with tenant_session(db.sessions, tenant_id) as session:
        if role_of(session, user_id) is None:
            raise NotFoundError("This template does not exist (or belongs to another tenant).")
        return _document(_get(session, template_id))


def _store(
    db: Database,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID | None,
    document: Document,
    action: str,
    **details: Any,
) -> TemplateView:
    catalog = designer.designer_catalog(db, tenant_id, document.graph.get("pins"))
    with tenant_session(db.sessions, tenant_id) as session:
        require_role(session, user_id, EDITORS, "save templates")
        row = Template(tenant_id=tenant_id, name=document.name, description=document.description,
                       graph=document.graph, trigger=designer.trigger_of(document.graph, catalog),
                       credential_slots=[s.__dict__ for s in document.slots], created_by=user_id)  # fmt: skip
        session.add(row)
        session.flush()
        audit.record(session, action, tenant_id=tenant_id, actor_user_id=user_id, target_type="template",
                     target_id=row.id, name=row.name, **details)  # fmt: skip
        author = session.scalar(sa.select(User.email).where(User.id == user_id)) if user_id else None
        return _view(row, author)


def save_flow_as_template(
    db: Database, vault: Vault, tenant_id: uuid.UUID, user_id: uuid.UUID, flow_id: uuid.UUID,
    *, name: str = "", description: str = "",
) -> TemplateView:  # fmt: skip
    """The flow's draft as a template of this tenant: credentials become slots, pasted secrets are masked."""
    exported = export_flow(db, vault, tenant_id, user_id, flow_id)
    document = parse_document({**exported, "name": name.strip() or exported["name"],
                               "description": description or exported.get("description") or ""})  # fmt: skip
    return _store(db, tenant_id, user_id, document, "template.created", flow_id=str(flow_id))


def import_template(
    db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID, raw: str | bytes | dict
) -> TemplateView:
    """A flow or template document into the tenant's gallery."""
    return _store(db, tenant_id, user_id, parse_document(raw), "template.imported")


def delete_template(db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID, template_id: uuid.UUID) -> str:
    with tenant_session(db.sessions, tenant_id) as session:
        require_role(session, user_id, EDITORS, "delete templates")
        row = _get(session, template_id)
        if row.tenant_id is None:
            raise PermissionDeniedError("Templates shipped with the hub cannot be deleted.")
        name = row.name
        session.delete(row)
        audit.record(session, "template.deleted", tenant_id=tenant_id, actor_user_id=user_id,
                     target_type="template", target_id=template_id, name=name)  # fmt: skip
    return name


# -- making a flow ----------------------------------------------------------------------------------------------
def instantiate_document(
    db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID, document: Document,
    *, name: str = "", credentials: dict[str, str] | None = None, leave_unmapped: bool = False,
) -> Instantiated:  # fmt: skip
    """A new flow (a draft, inactive) from the document, with the credential picked for each slot. Every slot
    needs one unless `leave_unmapped`: some steps run without a credential (a public API), so a forgotten one
    would not show until the flow fails against the real system."""
    credentials = {k: v for k, v in (credentials or {}).items() if v}
    slots = {slot.node_id: slot for slot in document.slots}
    if unknown := sorted(set(credentials) - set(slots)):
        raise ValidationError(f"These steps take no credential in this flow: {', '.join(unknown)}.")
    if not leave_unmapped and (
        missing := [slot.label for key, slot in slots.items() if key not in credentials]
    ):
        raise ValidationError(f"Pick a credential for each step that needs one (or leave them out on purpose): "
                              f"{'; '.join(missing)}.")  # fmt: skip
    chosen: dict[str, str] = {}
    with tenant_session(db.sessions, tenant_id) as session:
        require_role(session, user_id, EDITORS, "create flows")
        for node_id, raw_id in credentials.items():
            slot = slots[node_id]
            try:
                credential = visible_credential(session, user_id, uuid.UUID(str(raw_id)))
            except ValueError:
                raise ValidationError(f"{slot.label}: {raw_id!r} is not a credential's id.") from None
            if not slot.fits(credential.kind, credential.component_name):
                raise ValidationError(
                    f"{slot.label}: the credential {credential.name!r} is of kind {credential.kind}; pick one of "
                    f"kind {slot.kind}{f' for {slot.component_name}' if slot.component_name else ''}."
                )
            chosen[node_id] = str(credential.id)
    nodes = []
    for node in document.graph.get("nodes") or []:
        node = {k: v for k, v in node.items() if k != "credential_needed"}
        if node["id"] in chosen:
            node["credential_id"] = chosen[node["id"]]
        nodes.append(node)
    graph = {**document.graph, "nodes": nodes}
    catalog = designer.designer_catalog(db, tenant_id, graph.get("pins"))
    flow = flows.create_flow(db, tenant_id, (name.strip() or document.name)[:200], graph,
                             designer.trigger_of(graph, catalog), user_id=user_id)  # fmt: skip
    return Instantiated(flow.id, tuple(slot for node_id, slot in slots.items() if node_id not in chosen))


def instantiate(
    db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID, template_id: uuid.UUID,
    *, name: str = "", credentials: dict[str, str] | None = None, leave_unmapped: bool = False,
) -> Instantiated:  # fmt: skip
    with tenant_session(db.sessions, tenant_id) as session:
        document = parse_document(_document(_get(session, template_id)))
    return instantiate_document(db, tenant_id, user_id, document, name=name, credentials=credentials,
                                leave_unmapped=leave_unmapped)  # fmt: skip


def sync_gallery(db: Database) -> int:
    """Keep the shipped templates (app/gallery/*.json) in the database as global templates; returns rows written."""
    written = 0
    folder = importlib.resources.files("app.gallery")
    with system_session(db.sessions) as session:
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if not entry.name.endswith(".json"):
                continue
            document = parse_document(entry.read_bytes())
            template_id = uuid.uuid5(GALLERY_NAMESPACE, entry.name)
            row = session.get(Template, template_id)
            if row is None:
                row = Template(id=template_id, tenant_id=None)
                session.add(row)
            elif (row.name, row.description, row.graph) == (
                document.name,
                document.description,
                document.graph,
            ):
                continue
            row.name, row.description, row.graph = document.name, document.description, document.graph
            row.trigger = {"kind": _trigger_kind(document.graph)}
            row.credential_slots = [s.__dict__ for s in document.slots]
            written += 1
    return written


def _trigger_kind(graph: dict[str, Any]) -> str:
    """The gallery's trigger label without a tenant's catalog: shipped templates start with a built-in trigger."""
    kinds = {"webhook": "webhook", "schedule": "polling", "http_poll": "polling", "manual": "manual"}
    return next(
        (kinds[n["component"]] for n in graph.get("nodes") or [] if n.get("component") in kinds), "manual"
    )
