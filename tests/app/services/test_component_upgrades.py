"""Pinned component versions: a newer import changes no flow by itself; the designer is offered the upgrade with
what changed in the fields its steps use, and publishing follows the pin."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.errors import ConflictError
from app.runtime_ids import runtime_id
from app.services import catalog, designer, flows
from app.services.catalog import TenantCatalog
from app.services.component_upgrades import field_changes, newest_imported, upgrades
from app.storage.models import FlowVersion
from app.storage.scoping import tenant_session
from designer import edits
from runtime.components.descriptor import parse_descriptor
from tests.runtime.conftest import START, node

PROBE = Path(__file__).resolve().parents[2] / "fixtures" / "components" / "probe"


def _newer_probe(tmp_path: Path) -> Path:
    """The probe with its echo's fields changed: a required field added, one removed, one relabelled."""
    folder = tmp_path / "probe"
    shutil.copytree(PROBE, folder)
    descriptor = json.loads((folder / "component.json").read_text())
    descriptor["version"] = "2.0.0"
    fields = descriptor["actions"]["echo"]["fields"]
    del fields["palette"]
    fields["colour"] = {**fields["colour"], "label": "Colour name", "require": []}
    fields["target"] = {"label": "Target", "viewClass": "TextFieldView", "required": True}
    (folder / "component.json").write_text(json.dumps(descriptor))
    return folder


def _graph(version: str) -> dict:
    return {"nodes": [START, node("echo", "probe", "echo")], "edges": [{"source": "start", "target": "echo"}],
            "pins": {"probe": version}}  # fmt: skip


def _published_pin(hub, flow_id) -> str:
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        version = session.scalars(
            sa.select(FlowVersion).where(FlowVersion.flow_id == flow_id).order_by(FlowVersion.number.desc())
        ).first()
        document = hub.bus.load_version(runtime_id(hub.tenant_id), runtime_id(version.id))
        assert version.component_pins["probe"] == document["components"]["probe"]["version"]
        return version.component_pins["probe"]


def test_a_newer_import_is_offered_with_its_field_changes_and_not_applied(hub, tmp_path) -> None:
    first = catalog.import_folder(hub.db, PROBE, tenant_id=hub.tenant_id, components_dir=tmp_path / "c")
    flow = flows.create_flow(hub.db, hub.tenant_id, "pinned", _graph(first.version))
    assert upgrades(hub.db, hub.tenant_id, _graph(first.version)) == []
    catalog.import_folder(
        hub.db, _newer_probe(tmp_path), tenant_id=hub.tenant_id, components_dir=tmp_path / "c"
    )

    [offer] = upgrades(hub.db, hub.tenant_id, _graph(first.version))
    assert (offer.component, offer.pinned, offer.latest) == ("probe", first.version, "2.0.0")
    assert offer.changes == (
        "Echo: new required field 'Target'",
        "Echo: field 'Palette' removed",
        "Echo: field 'Colour' is now labelled 'Colour name'",
    )
    flows.publish_flow(hub.db, hub.bus, TenantCatalog(hub.db, hub.tenant_id), hub.tenant_id, flow.id)
    assert _published_pin(hub, flow.id) == first.version  # the newer import changed nothing

    upgraded = edits.set_pin(_graph(first.version), "probe", "2.0.0")
    upgraded["nodes"][1] = {**upgraded["nodes"][1], "fields": {"target": "x"}}
    flows.save_draft(hub.db, hub.tenant_id, flow.id, upgraded, expected_lock_version=flow.lock_version)
    flows.publish_flow(hub.db, hub.bus, TenantCatalog(hub.db, hub.tenant_id), hub.tenant_id, flow.id)
    assert _published_pin(hub, flow.id) == "2.0.0"
    assert upgrades(hub.db, hub.tenant_id, upgraded) == []


def test_newest_versions_are_only_for_imported_components(hub, tmp_path) -> None:
    first = catalog.import_folder(hub.db, PROBE, tenant_id=hub.tenant_id, components_dir=tmp_path / "c")
    assert newest_imported(hub.db, hub.tenant_id, ["probe", "log", "manual", "nope"]) == {
        "probe": first.version
    }
    assert newest_imported(hub.db, hub.tenant_id, []) == {}


def test_a_vanished_pinned_version_says_upgrading_keeps_the_flow_running() -> None:
    new = parse_descriptor(json.loads((PROBE / "component.json").read_text()), name="probe").descriptor
    assert field_changes(None, new, ["echo"]) == [
        "The pinned version is no longer in the catalog: upgrading is the way to keep this flow running."
    ]


def test_a_function_gone_and_changed_choices_and_requirement() -> None:
    old = parse_descriptor({"title": "X", "actions": {
        "a": {"title": "A", "main": "m.a", "fields": {
            "mode": {"label": "Mode", "viewClass": "SelectView", "model": {"x": "X", "y": "Y"}},
            "note": {"label": "Note", "viewClass": "TextFieldView", "required": True}}},
        "b": {"title": "B", "main": "m.b"}}}, name="x").descriptor  # fmt: skip
    new = parse_descriptor({"title": "X", "actions": {
        "a": {"title": "A", "main": "m.a", "fields": {
            "mode": {"label": "Mode", "viewClass": "SelectView", "model": {"x": "X", "z": "Z"}},
            "note": {"label": "Note", "viewClass": "TextAreaView"}}}}}, name="x").descriptor  # fmt: skip
    assert field_changes(old, new, ["a", "b"]) == [
        "A: choices of 'Mode': added z; removed y",
        "A: field 'Note' is now optional",
        "A: field 'Note' is now TextAreaView (was TextFieldView)",
        "b: gone in the new version; its steps will have to be replaced.",
    ]


def test_a_flow_published_before_pins_keeps_its_published_versions_when_opened(hub, tmp_path) -> None:
    first = catalog.import_folder(hub.db, PROBE, tenant_id=hub.tenant_id, components_dir=tmp_path / "c")
    graph = {
        "nodes": [START, node("echo", "probe", "echo")],
        "edges": [{"source": "start", "target": "echo"}],
    }
    flow = flows.create_flow(hub.db, hub.tenant_id, "older", graph)
    flows.publish_flow(hub.db, hub.bus, TenantCatalog(hub.db, hub.tenant_id), hub.tenant_id, flow.id)
    catalog.import_folder(
        hub.db, _newer_probe(tmp_path), tenant_id=hub.tenant_id, components_dir=tmp_path / "c"
    )
    _, draft, _ = designer.read_draft(hub.db, hub.tenant_id, flow.id)
    assert draft["pins"] == {"probe": first.version}  # not the newer import: that one is offered, not applied
    assert [u.latest for u in upgrades(hub.db, hub.tenant_id, draft)] == ["2.0.0"]


def test_publishing_a_draft_someone_changed_meanwhile_is_a_conflict(hub) -> None:
    graph = {"nodes": [START], "edges": []}
    flow = flows.create_flow(hub.db, hub.tenant_id, "raced", graph)
    changed = {"nodes": [START, node("log", "log", "log")], "edges": [{"source": "start", "target": "log"}]}
    flows.save_draft(hub.db, hub.tenant_id, flow.id, changed, expected_lock_version=flow.lock_version)
    with pytest.raises(ConflictError, match="changed by someone else"):
        flows.publish_flow(hub.db, hub.bus, hub.components, hub.tenant_id, flow.id,
                           expected_lock_version=flow.lock_version)  # fmt: skip
