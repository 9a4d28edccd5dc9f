"""The designer's services: the palette and node looks from the catalog, the draft's problems as one edits,
saving (draft always, a version only without problems; conflicts), versions and who saved them."""

from __future__ import annotations

import pytest

from app.errors import ConflictError, NotFoundError
from app.services import accounts, designer, flows
from app.services.catalog import TenantCatalog
from tests.runtime.conftest import START, node

GOOD = {
    "nodes": [START, node("shape", "jsonata", "transform", fields={"expression": "{'n': n}"})],
    "edges": [{"source": "start", "target": "shape"}],
}
MISSING_FIELD = {
    "nodes": [START, node("shape", "jsonata", "transform")],
    "edges": [{"source": "start", "target": "shape"}],
}


def _save(hub, flow, graph, lock=None, user=None):
    return designer.save_design(
        hub.db, hub.bus, TenantCatalog(hub.db, hub.tenant_id), hub.tenant_id, flow.id, graph,
        designer.trigger_of(graph, designer.designer_catalog(hub.db, hub.tenant_id)),
        expected_lock_version=flow.lock_version if lock is None else lock, user_id=user, routes=None,
    )  # fmt: skip


def test_the_palette_lists_the_built_ins_triggers_first(hub) -> None:
    items = designer.designer_catalog(hub.db, hub.tenant_id).palette()
    names = [(i["component"], i["function"]) for i in items]
    assert ("webhook", "receive") in names and ("jsonata", "transform") in names
    groups = [i["group"] for i in items]
    assert groups == sorted(groups, key=["Triggers", "Actions", "This tenant's actions"].index)
    assert all(i["icon"].startswith("/") for i in items)


def test_looks_and_triggers_come_from_the_descriptors(hub) -> None:
    catalog = designer.designer_catalog(hub.db, hub.tenant_id)
    looks = catalog.looks()
    assert looks[("webhook", "receive")].trigger is True
    assert looks[("jsonata", "transform")].trigger is False
    assert catalog.is_trigger({"component": "schedule", "function": "tick"}) is True
    assert catalog.is_trigger({"component": "nope", "function": "x"}) is False
    webhook = {"nodes": [node("hook", "webhook", "receive")], "edges": []}
    assert designer.trigger_of(webhook, catalog) == {"kind": "webhook"}
    assert designer.trigger_of({"nodes": []}, catalog) == {"kind": "manual"}


def test_problems_name_their_node(hub) -> None:
    found = designer.draft_problems(
        hub.db, TenantCatalog(hub.db, hub.tenant_id), hub.tenant_id, None, MISSING_FIELD
    )
    assert [(p.node_id, p.code) for p in found] == [("shape", "missing_field")]
    assert (
        designer.draft_problems(hub.db, TenantCatalog(hub.db, hub.tenant_id), hub.tenant_id, None, GOOD) == []
    )


def test_a_draft_with_problems_is_saved_but_not_published(hub) -> None:
    flow = flows.create_flow(hub.db, hub.tenant_id, "orders")
    outcome = _save(hub, flow, MISSING_FIELD)
    assert outcome.version is None and [p.code for p in outcome.problems] == ["missing_field"]
    assert outcome.lock_version == flow.lock_version + 1
    name, graph, lock = designer.read_draft(hub.db, hub.tenant_id, flow.id)
    assert (name, graph, lock) == ("orders", MISSING_FIELD, outcome.lock_version)
    assert designer.list_versions(hub.db, hub.tenant_id, flow.id) == []


def test_a_good_draft_becomes_the_next_version_with_its_author(hub) -> None:
    user = accounts.create_user(hub.db, "ann@example.com", "a long enough password", "Ann Author")
    accounts.add_member(hub.db, hub.tenant_id, user.id, "editor")
    flow = flows.create_flow(hub.db, hub.tenant_id, "orders")
    first = _save(hub, flow, GOOD, user=user.id)
    second = _save(hub, flow, {"nodes": [START], "edges": []}, lock=first.lock_version, user=user.id)
    assert (first.version, second.version) == (1, 2)
    versions = designer.list_versions(hub.db, hub.tenant_id, flow.id)
    assert [(v.number, v.author, v.current) for v in versions] == [
        (2, "Ann Author", True),
        (1, "Ann Author", False),
    ]
    assert designer.version_graph(hub.db, hub.tenant_id, flow.id, 1) == GOOD


def test_a_second_editor_working_from_an_old_read_gets_a_conflict(hub) -> None:
    flow = flows.create_flow(hub.db, hub.tenant_id, "orders")
    _save(hub, flow, GOOD)  # the first editor saves
    with pytest.raises(ConflictError, match="changed by someone else"):
        _save(hub, flow, MISSING_FIELD)  # the second still has the lock version they opened with
    assert designer.read_draft(hub.db, hub.tenant_id, flow.id)[1] == GOOD


def test_a_missing_version_says_so(hub) -> None:
    flow = flows.create_flow(hub.db, hub.tenant_id, "orders")
    with pytest.raises(NotFoundError, match="no version 3"):
        designer.version_graph(hub.db, hub.tenant_id, flow.id, 3)


def test_another_tenants_flow_is_not_found(hub) -> None:
    flow = flows.create_flow(hub.db, hub.tenant_id, "orders", GOOD)
    other = hub.new_tenant("Other")
    with pytest.raises(NotFoundError):
        designer.read_draft(hub.db, other, flow.id)
    with pytest.raises(NotFoundError):
        designer.list_versions(hub.db, other, flow.id)
