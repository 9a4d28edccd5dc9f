"""The Flows page's list and its row actions: search, sort, last run, rename, delete."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.errors import ConflictError, NotFoundError, ValidationError
from app.services import flows, webhooks
from app.services.flow_list import list_flows
from app.storage.models import FlowStatus, Run
from app.storage.scoping import tenant_session
from tests.runtime.conftest import START, node

GOOD = {"nodes": [START, node("log", "log", "log")], "edges": [{"source": "start", "target": "log"}]}


def test_search_is_by_name_in_any_case_and_literal(hub) -> None:
    for name in ("Orders to ERP", "invoices", "100% sync"):
        flows.create_flow(hub.db, hub.tenant_id, name)
    assert [f.name for f in list_flows(hub.db, hub.tenant_id, "ORDERS")] == ["Orders to ERP"]
    assert [f.name for f in list_flows(hub.db, hub.tenant_id, "%")] == ["100% sync"]
    assert list_flows(hub.db, hub.tenant_id, "nothing like it") == []


def test_sorts(hub) -> None:
    for name in ("b", "a", "c"):
        flows.create_flow(hub.db, hub.tenant_id, name)
    assert [f.name for f in list_flows(hub.db, hub.tenant_id, sort="name")] == ["a", "b", "c"]
    assert [f.name for f in list_flows(hub.db, hub.tenant_id, sort="created")] == ["c", "a", "b"]


def test_the_last_run_is_the_newest_outside_test_mode(hub) -> None:
    flow_id = hub.flow(GOOD["nodes"], GOOD["edges"])
    quiet = flows.create_flow(hub.db, hub.tenant_id, "never ran")
    hub.start(flow_id, {"n": 1})
    hub.drive(lambda: _finished(hub) == 1)
    found = {f.name: f for f in list_flows(hub.db, hub.tenant_id)}
    assert found["test flow"].last_run_status == "succeeded" and found["test flow"].version == 1
    assert found[quiet.name].last_run_status == "" and found[quiet.name].last_run_at is None
    assert next(f.name for f in list_flows(hub.db, hub.tenant_id, sort="last_run")) == "test flow"


def _finished(hub) -> int:
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        return session.scalar(sa.select(sa.func.count(Run.id)).where(Run.status == "succeeded"))


def test_rename_keeps_an_open_editors_lock(hub) -> None:
    flow = flows.create_flow(hub.db, hub.tenant_id, "old")
    renamed = flows.rename_flow(hub.db, hub.tenant_id, flow.id, "  new name ")
    assert renamed.name == "new name" and renamed.lock_version == flow.lock_version
    flows.save_draft(hub.db, hub.tenant_id, flow.id, GOOD, expected_lock_version=flow.lock_version)
    with pytest.raises(ValidationError, match="needs a name"):
        flows.rename_flow(hub.db, hub.tenant_id, flow.id, " ")


def test_delete_is_refused_while_the_flow_runs_and_takes_its_urls(hub) -> None:
    flow_id = hub.flow([node("hook", "webhook", "receive"), node("log", "log", "log")],
                       [{"source": "hook", "target": "log"}])  # fmt: skip
    url = webhooks.create_url(hub.db, hub.bus, hub.components, hub.tenant_id, flow_id, "production",
                              webhooks.NO_DEFAULTS)  # fmt: skip
    token = url.url.rsplit("/", 1)[-1]
    flows.set_status(hub.db, hub.tenant_id, flow_id, FlowStatus.ACTIVE, None)
    with pytest.raises(ConflictError, match="deactivate it before deleting it"):
        flows.delete_flow(hub.db, hub.bus, hub.tenant_id, flow_id)
    flows.set_status(hub.db, hub.tenant_id, flow_id, FlowStatus.INACTIVE, None)
    assert hub.bus.redis.exists(f"hub:hook:{token}")
    assert flows.delete_flow(hub.db, hub.bus, hub.tenant_id, flow_id) == "test flow"
    assert not hub.bus.redis.exists(f"hub:hook:{token}")
    with pytest.raises(NotFoundError):
        flows.delete_flow(hub.db, hub.bus, hub.tenant_id, flow_id)


def test_another_tenant_cannot_rename_or_delete(hub) -> None:
    flow = flows.create_flow(hub.db, hub.tenant_id, "mine")
    other = hub.new_tenant("Other")
    with pytest.raises(NotFoundError):
        flows.rename_flow(hub.db, other, flow.id, "theirs")
    with pytest.raises(NotFoundError):
        flows.delete_flow(hub.db, hub.bus, other, flow.id)
    assert [f.name for f in list_flows(hub.db, other)] == []
