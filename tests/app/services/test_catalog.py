"""Importing component.json descriptors into the catalog: the 24 real ones, broken ones, versions, scopes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.errors import ValidationError
from app.services import accounts, catalog
from app.storage.models import Component
from app.storage.scoping import system_session

# Real descriptors from the elastic.io / Open Integration Hub repositories (provenance in SOURCES.md).
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "component-json"
FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))


def _raw(path: Path) -> dict:
    return json.loads(path.read_text())


def _count(db) -> int:
    with system_session(db.sessions) as session:
        return len(session.scalars(sa.select(Component.id)).all())


@pytest.fixture
def tenant(db):
    return accounts.create_tenant(db, "Catalog tenant").id


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.stem.split("__")[-1])
def test_every_real_descriptor_imports(db, tenant, path: Path) -> None:
    raw = _raw(path)
    result = catalog.import_descriptor(
        db, path.read_bytes(), name=path.stem.split("__")[-1], tenant_id=tenant
    )
    assert all(isinstance(w, str) and ": " in w for w in result.warnings)
    [entry] = [e for e in catalog.list_components(db, tenant) if e.id == result.component_id]
    assert entry.title == raw["title"]
    assert entry.triggers == len(raw.get("triggers") or {})
    assert entry.actions == len(raw.get("actions") or {})
    assert entry.scope == "tenant"


def test_the_24_fixtures_are_there() -> None:
    assert len(FIXTURE_FILES) == 24


def _by_name(path_part: str) -> Path:
    return next(p for p in FIXTURE_FILES if path_part in p.name)


def test_messy_descriptors_are_repaired_with_warnings_that_name_the_key(db, tenant) -> None:
    postgres = catalog.import_descriptor(db, _by_name("postgresql").read_bytes(), tenant_id=tenant, name="pg")
    assert any(
        w.startswith("actions.sqlQuery.fields.label: is not a field definition") for w in postgres.warnings
    )
    filter_ = catalog.import_descriptor(
        db, _by_name("filter").read_bytes(), tenant_id=tenant, name="ei-filter"
    )
    assert "actions.SimpleJSONataFilter.fields.assertion: key 'Note' read as 'note'" in filter_.warnings
    s3 = catalog.import_descriptor(db, _by_name("aws-s3").read_bytes(), tenant_id=tenant, name="s3")
    assert any("draft-3 'required: true'" in w for w in s3.warnings)
    with system_session(db.sessions) as session:
        stored = session.get(Component, s3.component_id).descriptor
    schemas = [m for f in stored["actions"].values() for m in (f.get("metadata") or {}).values()]
    assert any(isinstance(s.get("required"), list) and s["required"] for s in schemas)
    assert not any(
        isinstance(p.get("required"), bool) for s in schemas for p in (s.get("properties") or {}).values()
    )


def test_a_folder_brings_its_metadata_files(db, tenant, tmp_path) -> None:
    folder = tmp_path / "amqp-component"
    (folder / "lib" / "schemas").mkdir(parents=True)
    (folder / "component.json").write_bytes(_by_name("amqp").read_bytes())
    schema = {"type": "object", "properties": {"routingKey": {"type": "string", "required": True}}}
    (folder / "lib" / "schemas" / "publish.in.json").write_text(json.dumps(schema))
    result = catalog.import_folder(db, folder, tenant_id=tenant)
    assert result.name == "amqp-component"
    assert not any("publish.in.json" in w for w in result.warnings)
    with system_session(db.sessions) as session:
        stored = session.get(Component, result.component_id).descriptor
    assert stored["actions"]["publish"]["metadata"]["in"]["required"] == ["routingKey"]


def test_an_unknown_view_class_becomes_a_text_field_with_a_note(db, tenant) -> None:
    descriptor = {
        "title": "Odd",
        "version": "1.0.0",
        "actions": {"go": {"main": "./go.js", "fields": {"x": {"label": "X", "viewClass": "HologramView"}}}},
    }
    result = catalog.import_descriptor(db, descriptor, tenant_id=tenant)
    assert "actions.go.fields.x: unknown viewClass 'HologramView': shown as a text field" in result.warnings
    with system_session(db.sessions) as session:
        _, parsed, _ = catalog.get_descriptor(session, result.component_id)
    field = parsed.actions[0].fields[0]
    assert (field.kind, field.unknown_view) == ("text", True)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"title": "x", "actions": {', "component.json is not valid JSON: Expecting property name"),
        (b"[1, 2]", "the descriptor must be a JSON object, got list"),
        (b'{"title": "x"}', "no usable trigger or action"),
        (b'{"title": "x", "actions": {"a": "nope"}}', "no usable trigger or action"),
        (b'{"title": "x", "triggers": ["a"]}', "triggers: must be an object keyed by function id, got list"),
        (b'{"title": "x", "actions": {"a": {}}, "credentials": []}', "credentials: must be an object"),
        (
            b'{"title": "x", "actions": {"a": {}}, "x-hub": {"runtime": "wasm"}}',
            "x-hub.runtime: must be builtin",
        ),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"actions": {"a": {}}}', "needs a name"),
    ],
)
def test_broken_descriptors_are_refused_and_store_nothing(db, tenant, content: bytes, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(".", r"\.")):
        catalog.import_descriptor(db, content, tenant_id=tenant)
    assert _count(db) == 0


def test_versions_never_change_under_a_flow(db, tenant) -> None:
    raw = _raw(_by_name("jsonata-transform"))  # has no version: one is derived from the content
    first = catalog.import_descriptor(db, raw, tenant_id=tenant, name="ei-jsonata")
    again = catalog.import_descriptor(db, raw, tenant_id=tenant, name="ei-jsonata")
    assert again.unchanged and again.version == first.version and first.version.startswith("0.0.0+")
    changed = catalog.import_descriptor(
        db, {**raw, "description": "changed"}, tenant_id=tenant, name="splitter"
    )
    assert changed.version != first.version and not changed.unchanged
    versioned = _raw(_by_name("amqp"))
    catalog.import_descriptor(db, versioned, tenant_id=tenant, name="amqp")
    with pytest.raises(ValidationError, match="already in the catalog with a different descriptor"):
        catalog.import_descriptor(db, {**versioned, "description": "changed"}, tenant_id=tenant, name="amqp")


def test_tenant_components_are_private_and_global_ones_shared(db, tenant) -> None:
    other = accounts.create_tenant(db, "Other tenant").id
    private = catalog.import_descriptor(db, _by_name("xml").read_bytes(), tenant_id=tenant, name="xml")
    shared = catalog.import_descriptor(db, _by_name("csv").read_bytes(), name="csv")
    mine = {e.id for e in catalog.list_components(db, tenant)}
    theirs = {e.id for e in catalog.list_components(db, other)}
    assert {private.component_id, shared.component_id} <= mine
    assert shared.component_id in theirs and private.component_id not in theirs
    assert [e.name for e in catalog.list_components(db, other, search="CSV")] == ["csv"]


def test_builtins_are_global_components(db, tenant) -> None:
    assert catalog.sync_builtins(db) >= 10
    assert catalog.sync_builtins(db) == 0  # unchanged code, nothing written
    entries = {e.name: e for e in catalog.list_components(db, tenant)}
    assert entries["jsonata"].scope == "global" and entries["jsonata"].runtime == "builtin"
    assert entries["webhook"].triggers == 1
    assert entries["manual"].version == "1.0.0" and entries["manual"].warnings == 0
    # Every built-in has its own icon under assets/.
    assert all(e.icon == f"/components/{e.name}.svg" for e in entries.values() if e.runtime == "builtin")


def test_a_builtin_name_cannot_be_taken(db, tenant) -> None:
    with pytest.raises(ValidationError, match="belongs to a built-in component"):
        catalog.import_descriptor(db, _by_name("webhook").read_bytes(), tenant_id=tenant, name="webhook")


def test_the_newest_version_is_listed(db, tenant) -> None:
    raw = _raw(_by_name("amqp"))
    catalog.import_descriptor(db, {**raw, "version": "1.0.0", "title": "Zeta"}, tenant_id=tenant, name="amqp")
    newer = catalog.import_descriptor(
        db, {**raw, "version": "2.0.0", "title": "Alpha"}, tenant_id=tenant, name="amqp"
    )
    [entry] = [e for e in catalog.list_components(db, tenant) if e.name == "amqp"]
    assert entry.id == newer.component_id


def test_a_stored_descriptor_imports_again_as_unchanged(db, tenant) -> None:
    first = catalog.import_descriptor(db, _by_name("amqp").read_bytes(), tenant_id=tenant, name="amqp")
    with system_session(db.sessions) as session:
        stored = session.get(Component, first.component_id).descriptor
    again = catalog.import_descriptor(db, stored, tenant_id=tenant, name="amqp")
    assert again.unchanged and again.component_id == first.component_id


def test_a_deeply_nested_descriptor_is_refused_not_crashed(db, tenant) -> None:
    deep: dict = {"type": "object"}
    for _ in range(300):
        deep = {"type": "object", "properties": {"a": deep}}
    descriptor = {"title": "Deep", "version": "1", "actions": {"go": {"metadata": {"in": deep}}}}
    with pytest.raises(ValidationError, match="cannot be stored"):
        catalog.import_descriptor(db, descriptor, tenant_id=tenant, name="deep")
    assert _count(db) == 0
