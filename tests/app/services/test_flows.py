"""Flows: drafts with optimistic locking, publishing validated immutable versions to the runtime."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from app.errors import ConflictError, FlowInvalidError, NotFoundError, ValidationError
from app.runtime_ids import runtime_id
from app.services import flows, plans
from app.storage.models import Credential, FlowVersion, TenantKey
from app.storage.scoping import tenant_session
from tests.runtime.conftest import START, node

GOOD = {"nodes": [START, node("log", "log", "log")], "edges": [{"source": "start", "target": "log"}]}


def _versions(hub, flow_id) -> list[int]:
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        return list(session.scalars(sa.select(FlowVersion.number).where(FlowVersion.flow_id == flow_id)))


def test_create_needs_a_name(hub) -> None:
    with pytest.raises(ValidationError, match="needs a name"):
        flows.create_flow(hub.db, hub.tenant_id, "  ")


def test_a_stale_save_is_a_conflict(hub) -> None:
    flow = flows.create_flow(hub.db, hub.tenant_id, "orders")
    saved = flows.save_draft(hub.db, hub.tenant_id, flow.id, GOOD, expected_lock_version=flow.lock_version)
    assert saved.lock_version == flow.lock_version + 1
    with pytest.raises(ConflictError, match="changed by someone else"):
        flows.save_draft(
            hub.db, hub.tenant_id, flow.id, {"nodes": []}, expected_lock_version=flow.lock_version
        )
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        assert flows.get_flow(session, flow.id).graph == GOOD


def test_publish_freezes_numbered_versions_and_hands_them_to_the_runtime(hub) -> None:
    flow = flows.create_flow(hub.db, hub.tenant_id, "orders", GOOD)
    first = flows.publish_flow(hub.db, hub.bus, hub.components, hub.tenant_id, flow.id)
    second = flows.publish_flow(hub.db, hub.bus, hub.components, hub.tenant_id, flow.id)
    assert (first.number, second.number) == (1, 2)
    assert first.component_pins == {"manual": "1.0.0", "log": "1.0.0"} or set(first.component_pins) == {
        "manual",
        "log",
    }
    document = hub.bus.load_version(runtime_id(hub.tenant_id), runtime_id(second.id))
    assert document["flow"] == runtime_id(flow.id)
    assert document["graph"]["nodes"] == GOOD["nodes"]
    version, plan = plans.current_plan(hub.db, hub.components, hub.tenant_id, flow.id)
    assert version.id == second.id and plan.entry == "start"


def test_an_invalid_flow_is_not_published(hub) -> None:
    graph = {"nodes": [START, node("x", "nope", "run")], "edges": [{"source": "start", "target": "x"}]}
    flow = flows.create_flow(hub.db, hub.tenant_id, "broken", graph)
    with pytest.raises(FlowInvalidError, match="x: Unknown component 'nope'") as caught:
        flows.publish_flow(hub.db, hub.bus, hub.components, hub.tenant_id, flow.id)
    assert [(p.code, p.node_id) for p in caught.value.problems] == [("unknown_component", "x")]
    assert _versions(hub, flow.id) == []
    assert not hub.bus.redis.keys("hub:*:version:*")


def _credential(hub, tenant_id, kind: str) -> str:
    with tenant_session(hub.db.sessions, tenant_id) as session:
        key = TenantKey(wrapped_key=b"k" * 40, master_key_id="k1")
        session.add(key)
        session.flush()
        credential = Credential(name="c", kind=kind, ciphertext=b"x", data_key_id=key.id)
        session.add(credential)
        session.flush()
        return str(credential.id)


@pytest.mark.parametrize(
    ("owner", "kind", "code"),
    [
        ("self", "basic", None),
        ("other", "basic", "unknown_credential"),
        ("self", "fields", "wrong_credential"),
    ],
)
def test_credentials_are_checked_against_the_tenants_vault(
    hub, owner: str, kind: str, code: str | None
) -> None:
    tenant = hub.tenant_id if owner == "self" else hub.new_tenant("Other")
    credential = _credential(hub, tenant, kind)
    call = node("call", "http", "request", fields={"url": "http://127.0.0.1:9/x"}, credential_id=credential)
    flow = flows.create_flow(
        hub.db,
        hub.tenant_id,
        "http",
        {"nodes": [START, call], "edges": [{"source": "start", "target": "call"}]},
    )
    if code is None:
        flows.publish_flow(hub.db, hub.bus, hub.components, hub.tenant_id, flow.id)
        return
    with pytest.raises(FlowInvalidError) as caught:
        flows.publish_flow(hub.db, hub.bus, hub.components, hub.tenant_id, flow.id)
    assert [(p.code, p.node_id) for p in caught.value.problems] == [(code, "call")]


def test_another_tenants_flow_is_not_found(hub) -> None:
    flow = flows.create_flow(hub.db, hub.tenant_id, "orders", GOOD)
    other = hub.new_tenant("Other")
    with pytest.raises(NotFoundError):
        flows.publish_flow(hub.db, hub.bus, hub.components, other, flow.id)
    with pytest.raises(NotFoundError):
        flows.save_draft(hub.db, other, flow.id, GOOD, expected_lock_version=flow.lock_version)


def test_publishing_does_not_invalidate_the_editors_draft(hub) -> None:
    flow = flows.create_flow(hub.db, hub.tenant_id, "orders", GOOD)
    flows.publish_flow(hub.db, hub.bus, hub.components, hub.tenant_id, flow.id)
    edited = {**GOOD, "nodes": [START]}
    saved = flows.save_draft(hub.db, hub.tenant_id, flow.id, edited, expected_lock_version=flow.lock_version)
    assert saved.lock_version == flow.lock_version + 1


def test_a_concurrent_publish_is_a_conflict(hub, monkeypatch) -> None:
    if hub.db.engine.dialect.name == "sqlite":
        pytest.skip("SQLite lets one writer in at a time: two publishes cannot interleave")
    flow = flows.create_flow(hub.db, hub.tenant_id, "orders", GOOD)
    real_publish = hub.bus.publish_version
    outcome: list = []

    def other_editor() -> None:
        try:
            flows.publish_flow(hub.db, hub.bus, hub.components, hub.tenant_id, flow.id)
            outcome.append("published")
        except ConflictError as exc:
            outcome.append(exc)

    def publish_meanwhile(*args, **kwargs):
        # Another editor publishes the same flow while this publish is between numbering and commit.
        monkeypatch.setattr(hub.bus, "publish_version", real_publish)
        threading.Thread(target=other_editor).start()
        time.sleep(0.3)  # it numbers its version too, then waits on ours
        real_publish(*args, **kwargs)

    monkeypatch.setattr(hub.bus, "publish_version", publish_meanwhile)
    flows.publish_flow(hub.db, hub.bus, hub.components, hub.tenant_id, flow.id)
    deadline = time.monotonic() + 10
    while not outcome and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(outcome) == 1 and isinstance(outcome[0], ConflictError)
    assert "published by someone else" in str(outcome[0])
    assert _versions(hub, flow.id) == [1]


def test_a_personal_credential_is_usable_only_by_its_owner(hub) -> None:
    from app.services import accounts

    owner = accounts.create_user(hub.db, f"o-{uuid.uuid4().hex[:6]}@example.com", "a long password!!")
    other = accounts.create_user(hub.db, f"x-{uuid.uuid4().hex[:6]}@example.com", "a long password!!")
    for user in (owner, other):
        accounts.add_member(hub.db, hub.tenant_id, user.id, "editor")
    credential = _credential(hub, hub.tenant_id, "basic")
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        session.get(Credential, uuid.UUID(credential)).owner_user_id = owner.id
    call = node("call", "http", "request", fields={"url": "http://127.0.0.1:9/x"}, credential_id=credential)
    graph = {"nodes": [START, call], "edges": [{"source": "start", "target": "call"}]}
    flow = flows.create_flow(hub.db, hub.tenant_id, "personal", graph)
    with pytest.raises(FlowInvalidError, match="not yours to use"):
        flows.publish_flow(hub.db, hub.bus, hub.components, hub.tenant_id, flow.id, user_id=other.id)
    with pytest.raises(FlowInvalidError, match="not yours to use"):
        flows.publish_flow(hub.db, hub.bus, hub.components, hub.tenant_id, flow.id)  # nobody's
    flows.publish_flow(hub.db, hub.bus, hub.components, hub.tenant_id, flow.id, user_id=owner.id)
    # Run by hand later: the version is checked as its author's.
    version, _plan = plans.current_plan(hub.db, hub.components, hub.tenant_id, flow.id)
    assert version.created_by == owner.id
