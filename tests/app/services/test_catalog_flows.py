"""Flows that use imported components: compiled against the tenant's catalog, pinned to the version saved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.errors import FlowInvalidError, NotFoundError, PermissionDeniedError, ValidationError
from app.runtime_ids import runtime_id
from app.services import catalog, flows
from app.services import runs as run_service
from app.storage.scoping import tenant_session
from tests.runtime.conftest import START, node

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "component-json"


def _flow(hub, catalog_view, component: str, function: str, fields: dict | None = None):
    graph = {
        "nodes": [START, node("ext", component, function, fields=fields or {})],
        "edges": [{"source": "start", "target": "ext"}],
    }
    flow = flows.create_flow(hub.db, hub.tenant_id, "uses an import", graph)
    version = flows.publish_flow(hub.db, hub.bus, catalog_view, hub.tenant_id, flow.id)
    return flow, version


def test_an_imported_component_is_pinned_in_the_published_version(hub) -> None:
    raw = json.loads((FIXTURES / "elasticio__splitter-component.json").read_text())
    first = catalog.import_descriptor(hub.db, raw, tenant_id=hub.tenant_id, name="splitter")
    view = catalog.TenantCatalog(hub.db, hub.tenant_id)
    flow, version = _flow(hub, view, "splitter", "split", {"splitter": "items"})
    assert version.component_pins == {"manual": "1.0.0", "splitter": first.version}
    document = hub.bus.load_version(runtime_id(hub.tenant_id), runtime_id(version.id))
    assert document["components"]["splitter"]["version"] == first.version

    # A newer import does not change what the published version runs.
    catalog.import_descriptor(hub.db, {**raw, "version": "9.9.9"}, tenant_id=hub.tenant_id, name="splitter")
    document = hub.bus.load_version(runtime_id(hub.tenant_id), runtime_id(version.id))
    assert document["components"]["splitter"]["version"] == first.version

    # Until the executors issue lands, an imported component cannot run inline: a clear dead letter.
    run_id = run_service.start_manual_run(hub.db, hub.bus, view, hub.tenant_id, flow.id, {"items": [1]})
    hub.drive(lambda: hub.finished(run_id))
    assert hub.run(run_id).status == "failed"
    assert "has no inline implementation" in hub.run(run_id).error


def test_another_tenants_import_is_unknown(hub) -> None:
    other = hub.new_tenant("Other")
    raw = (FIXTURES / "elasticio__splitter-component.json").read_bytes()
    catalog.import_descriptor(hub.db, raw, tenant_id=other, name="splitter")
    with pytest.raises(FlowInvalidError, match="Unknown component 'splitter'"):
        _flow(hub, catalog.TenantCatalog(hub.db, hub.tenant_id), "splitter", "split", {"splitter": "items"})


def test_required_fields_of_an_imported_function_are_checked(hub) -> None:
    raw = (FIXTURES / "elasticio__splitter-component.json").read_bytes()
    catalog.import_descriptor(hub.db, raw, tenant_id=hub.tenant_id, name="splitter")
    with pytest.raises(FlowInvalidError) as caught:
        _flow(hub, catalog.TenantCatalog(hub.db, hub.tenant_id), "splitter", "split")
    assert [(p.code, p.node_id) for p in caught.value.problems] == [("missing_field", "ext")]


def test_a_component_in_use_cannot_be_deleted(hub) -> None:
    raw = (FIXTURES / "elasticio__splitter-component.json").read_bytes()
    used = catalog.import_descriptor(hub.db, raw, tenant_id=hub.tenant_id, name="splitter")
    view = catalog.TenantCatalog(hub.db, hub.tenant_id)
    flow, _ = _flow(hub, view, "splitter", "split", {"splitter": "items"})
    with pytest.raises(ValidationError, match="is used by these flows: uses an import"):
        catalog.delete_component(hub.db, hub.tenant_id, used.component_id)
    # Gone from the draft, but the published version still pins it.
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        lock = flows.get_flow(session, flow.id).lock_version
    flows.save_draft(
        hub.db, hub.tenant_id, flow.id, {"nodes": [START], "edges": []}, expected_lock_version=lock
    )
    with pytest.raises(ValidationError, match="is used by these flows"):
        catalog.delete_component(hub.db, hub.tenant_id, used.component_id)

    unused = catalog.import_descriptor(
        hub.db, {**json.loads(raw), "version": "2.0.0"}, tenant_id=hub.tenant_id, name="splitter"
    )
    assert catalog.delete_component(hub.db, hub.tenant_id, unused.component_id) == "splitter 2.0.0"
    with pytest.raises(NotFoundError):
        catalog.delete_component(hub.db, hub.tenant_id, unused.component_id)


def test_global_and_foreign_components_cannot_be_deleted(hub) -> None:
    raw = (FIXTURES / "elasticio__splitter-component.json").read_bytes()
    shared = catalog.import_descriptor(hub.db, raw, name="splitter")
    with pytest.raises(PermissionDeniedError, match="administrators"):
        catalog.delete_component(hub.db, hub.tenant_id, shared.component_id)
    private = catalog.import_descriptor(hub.db, raw, tenant_id=hub.new_tenant("Other"), name="splitter")
    with pytest.raises(NotFoundError):
        catalog.delete_component(hub.db, hub.tenant_id, private.component_id)
