"""Templates: the shipped gallery (each one makes a flow that compiles once its credentials are picked), saving a
flow as a template without its secrets, export and import across tenants asking for credentials, refusals of bad
and foreign files, and who may change the gallery."""

from __future__ import annotations

import os
import uuid

import orjson
import pytest

from app.config import MasterKey
from app.errors import NotFoundError, PermissionDeniedError, ValidationError
from app.services import accounts, designer, flows, templates
from app.services import credentials as credential_service
from app.services.catalog import TenantCatalog, sync_builtins
from app.services.flow_list import read_flow
from app.vault.store import Vault
from tests.app.hub_runtime import HubRuntime

CANARY = "canary-tpl-3c1d9f0e"
VALUES = {
    "bearer": {"token": "t-123"},
    "api_key": {"key": "k-123"},
    "fields:email": {"host": "smtp.example.com", "port": "587", "security": "starttls", "username": "bot",
                     "password": "pw", "from": "bot@example.com"},
}  # fmt: skip


@pytest.fixture
def vault() -> Vault:
    return Vault([MasterKey(key_id="k", key=os.urandom(32))])


def _member(hub: HubRuntime, role: str, tenant_id: uuid.UUID) -> uuid.UUID:
    user = accounts.create_user(hub.db, f"{role}-{uuid.uuid4().hex[:6]}@example.com", "a long password!!")
    accounts.add_member(hub.db, tenant_id, user.id, role)
    return user.id


def _credential(hub, vault, tenant_id, user_id, slot: templates.Slot) -> uuid.UUID:
    key = f"fields:{slot.component_name}" if slot.kind == "fields" else slot.kind
    return credential_service.create_credential(
        hub.db, vault, hub.components, tenant_id, user_id, name=f"{key} {uuid.uuid4().hex[:4]}",
        kind=slot.kind, component_name=slot.component_name, values=VALUES[key],
    ).id  # fmt: skip


def _problems(hub, tenant_id, user_id, flow_id) -> list:
    graph = read_flow(hub.db, tenant_id, flow_id).graph
    return designer.draft_problems(hub.db, TenantCatalog(hub.db, tenant_id), tenant_id, user_id, graph)


def test_the_shipped_gallery_makes_flows_that_compile(hub: HubRuntime, vault: Vault) -> None:
    sync_builtins(hub.db)
    assert templates.sync_gallery(hub.db) == 5
    assert templates.sync_gallery(hub.db) == 0  # unchanged files: nothing written
    editor = _member(hub, "editor", hub.tenant_id)
    gallery = templates.list_templates(hub.db, hub.tenant_id)
    assert len(gallery) == 5 and all(t.scope == "global" and t.description for t in gallery)
    assert {t.trigger for t in gallery} == {"webhook", "polling"}
    for template in gallery:
        mapping = {s.node_id: str(_credential(hub, vault, hub.tenant_id, editor, s)) for s in template.slots}
        made = templates.instantiate(hub.db, hub.tenant_id, editor, template.id, credentials=mapping)
        assert made.unmapped == ()
        assert _problems(hub, hub.tenant_id, editor, made.flow_id) == [], template.name
        flow = read_flow(hub.db, hub.tenant_id, made.flow_id)
        assert flow.name == template.name and flow.status == "inactive"
    assert any(s.kind == "fields" and s.component_name == "email" for t in gallery for s in t.slots)


def test_a_flow_travels_as_a_template_without_its_secrets_and_asks_for_credentials(
    hub: HubRuntime, vault: Vault
) -> None:
    sync_builtins(hub.db)
    editor_a = _member(hub, "editor", hub.tenant_id)
    key = credential_service.create_credential(hub.db, vault, hub.components, hub.tenant_id, editor_a, name="Shop",
                                               kind="api_key", values={"key": CANARY})  # fmt: skip
    nodes = [
        {"id": "hook", "component": "webhook", "function": "receive"},
        {"id": "call", "component": "http", "function": "request", "name": "Shop API", "credential_id": str(key.id),
         "fields": {"method": "GET", "url": f"https://shop.example.com/orders?key={CANARY}"}},
    ]  # fmt: skip
    flow = flows.create_flow(
        hub.db, hub.tenant_id, "Orders", {"nodes": nodes, "edges": [{"source": "hook", "target": "call"}]}
    )
    saved = templates.save_flow_as_template(
        hub.db, vault, hub.tenant_id, editor_a, flow.id, name="Orders sync"
    )
    assert saved.scope == "tenant" and [(s.node_id, s.kind) for s in saved.slots] == [("call", "api_key")]
    document = templates.export_template(hub.db, hub.tenant_id, editor_a, saved.id)
    raw = orjson.dumps(document)
    assert CANARY.encode() not in raw and str(key.id).encode() not in raw

    tenant_b = hub.new_tenant("Globex")
    editor_b = _member(hub, "editor", tenant_b)
    imported = templates.import_template(hub.db, tenant_b, editor_b, raw)
    assert [s.label for s in imported.slots] == ["Shop API: api_key"]  # what the mapping step asks for
    with pytest.raises(NotFoundError):  # tenant A's credential means nothing in B
        templates.instantiate(hub.db, tenant_b, editor_b, imported.id, credentials={"call": str(key.id)})
    wrong = credential_service.create_credential(hub.db, vault, hub.components, tenant_b, editor_b, name="Bearer",
                                                 kind="bearer", values={"token": "x"})  # fmt: skip
    with pytest.raises(ValidationError, match="kind bearer; pick one of kind api_key"):
        templates.instantiate(hub.db, tenant_b, editor_b, imported.id, credentials={"call": str(wrong.id)})
    with pytest.raises(ValidationError, match="take no credential"):
        templates.instantiate(hub.db, tenant_b, editor_b, imported.id, credentials={"hook": str(wrong.id)})

    with pytest.raises(ValidationError, match=r"Pick a credential for each step.*Shop API: api_key"):
        templates.instantiate(hub.db, tenant_b, editor_b, imported.id)
    skipped = templates.instantiate(
        hub.db, tenant_b, editor_b, imported.id, name="Later", leave_unmapped=True
    )
    assert [s.node_id for s in skipped.unmapped] == ["call"]
    assert "credential_id" not in read_flow(hub.db, tenant_b, skipped.flow_id).graph["nodes"][1]
    own = credential_service.create_credential(hub.db, vault, hub.components, tenant_b, editor_b, name="Their key",
                                               kind="api_key", values={"key": "theirs"})  # fmt: skip
    made = templates.instantiate(hub.db, tenant_b, editor_b, imported.id, credentials={"call": str(own.id)})
    assert made.unmapped == () and _problems(hub, tenant_b, editor_b, made.flow_id) == []
    assert read_flow(hub.db, tenant_b, made.flow_id).graph["nodes"][1]["credential_id"] == str(own.id)

    # The flow export itself imports the same way, straight into a flow.
    parsed = templates.parse_document(orjson.dumps({**document, "format": "integration-hub.flow/1"}))
    direct = templates.instantiate_document(
        hub.db, tenant_b, editor_b, parsed, credentials={"call": str(own.id)}
    )
    assert read_flow(hub.db, tenant_b, direct.flow_id).name == "Orders sync"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json at all", "not JSON"),
        (b"[1, 2]", "expected an object"),
        (b'{"nodes": [], "connections": {}}', "n8n workflow"),
        (b'{"type": "ordinary", "graph": {"nodes": []}}', "Open Integration Hub flow"),
        (b'{"format": "something/else"}', "not an Integration Hub flow or template"),
        (b'{"format": "integration-hub.template/1"}', "no 'graph'"),
        (b'{"format": "integration-hub.template/1", "graph": {"nodes": "x"}}', "no list of nodes"),
        (b'{"format": "integration-hub.template/1", "graph": {"nodes": [{"id": "bad id!", "component": "log", '
         b'"function": "log"}]}}', "not valid: nodes.0.id"),
        (b'{"format": "integration-hub.template/1", "graph": {"nodes": [{"id": "a", "component": "log", '
         b'"function": "log", "credential_needed": "yes"}]}}', "must name a credential kind"),
        (b" " * (templates.MAX_BYTES + 1), "larger than 2 MB"),
    ],
)  # fmt: skip
def test_bad_and_foreign_files_are_refused_with_the_reason(raw: bytes, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        templates.parse_document(raw)


def test_who_may_change_the_gallery(hub: HubRuntime, vault: Vault) -> None:
    templates.sync_gallery(hub.db)
    viewer = _member(hub, "viewer", hub.tenant_id)
    editor = _member(hub, "editor", hub.tenant_id)
    shipped = templates.list_templates(hub.db, hub.tenant_id)[0]
    document = templates.export_template(hub.db, hub.tenant_id, viewer, shipped.id)
    with pytest.raises(PermissionDeniedError):
        templates.import_template(hub.db, hub.tenant_id, viewer, document)
    with pytest.raises(PermissionDeniedError):
        templates.instantiate(hub.db, hub.tenant_id, viewer, shipped.id, leave_unmapped=True)
    with pytest.raises(PermissionDeniedError, match="shipped with the hub"):
        templates.delete_template(hub.db, hub.tenant_id, editor, shipped.id)
    own = templates.import_template(hub.db, hub.tenant_id, editor, document)
    assert templates.list_templates(hub.db, hub.tenant_id)[0].id == own.id  # the tenant's own first
    other = hub.new_tenant("Other")
    assert own.id not in {t.id for t in templates.list_templates(hub.db, other)}
    with pytest.raises(NotFoundError):
        templates.export_template(hub.db, other, _member(hub, "owner", other), own.id)
    with pytest.raises(NotFoundError):  # not a member: as if it did not exist
        templates.export_template(hub.db, hub.tenant_id, _member(hub, "owner", other), own.id)
    with pytest.raises(PermissionDeniedError):
        templates.delete_template(hub.db, hub.tenant_id, viewer, own.id)
    assert templates.delete_template(hub.db, hub.tenant_id, editor, own.id) == shipped.name


def test_a_document_too_big_to_store_is_refused_even_when_already_decoded() -> None:
    with pytest.raises(ValidationError, match="beyond 64 bits"):
        templates.parse_document({"format": templates.FORMAT, "graph": {"nodes": []}, "n": 2**64})
    with pytest.raises(ValidationError, match="larger than 2 MB"):
        templates.parse_document(
            {"format": templates.FORMAT, "graph": {"nodes": []}, "pad": "x" * (3 * 1024 * 1024)}
        )
