"""The Flows page's list and its row actions: search, sort, last run, rename, delete."""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

from app.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from app.keyring import MasterKey
from app.runtime_ids import runtime_id
from app.services import accounts, flows, webhooks
from app.services.flow_list import list_flows
from app.storage.models import Credential, FlowStatus, FlowVersion, Run
from app.storage.scoping import tenant_session
from app.vault.store import Vault
from runtime.bus.keys import TenantKeys
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


def test_delete_waits_for_runs_in_progress_test_runs_included(hub) -> None:
    flow_id = hub.flow(GOOD["nodes"], GOOD["edges"])
    run_id = hub.start(flow_id, {"n": 1})
    recorder = hub.recorder()
    recorder.run_once()  # the run is recorded as started; no worker has taken it yet
    with pytest.raises(ConflictError, match="1 run in progress"):
        flows.delete_flow(hub.db, hub.bus, hub.tenant_id, flow_id)
    hub.drive(lambda: hub.finished(run_id))
    assert flows.delete_flow(hub.db, hub.bus, hub.tenant_id, flow_id) == "test flow"


def test_delete_forgets_the_flows_redis_state_and_its_webhook_secret(hub) -> None:
    vault = Vault([MasterKey(key_id="k", key=os.urandom(32))])
    flow_id = hub.flow([node("hook", "webhook", "receive"), node("log", "log", "log")],
                       [{"source": "hook", "target": "log"}])  # fmt: skip
    webhooks.create_url(
        hub.db, hub.bus, hub.components, hub.tenant_id, flow_id, "production", webhooks.NO_DEFAULTS
    )
    webhooks.update_settings(hub.db, hub.bus, hub.components, vault, hub.tenant_id, flow_id,
                             {"auth": "header", "header": "X-Token"}, webhooks.NO_DEFAULTS,
                             secret={"token": "s3cret-value"})  # fmt: skip
    tk = TenantKeys(runtime_id(hub.tenant_id))
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        versions = list(session.scalars(sa.select(FlowVersion.id).where(FlowVersion.flow_id == flow_id)))
        secrets = session.scalar(sa.select(sa.func.count(Credential.id)))
    assert secrets == 1 and all(hub.bus.redis.exists(tk.flow_version(runtime_id(v))) for v in versions)
    hub.bus.set_flow_limit(runtime_id(hub.tenant_id), runtime_id(flow_id), 2)

    flows.delete_flow(hub.db, hub.bus, hub.tenant_id, flow_id)
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        assert (
            session.scalar(sa.select(sa.func.count(Credential.id))) == 0
        )  # the webhook's secret went with it
    assert not any(hub.bus.redis.exists(tk.flow_version(runtime_id(v))) for v in versions)
    assert not hub.bus.redis.exists(tk.flow_limit(runtime_id(flow_id)))


def test_a_viewer_cannot_rename_or_delete(hub) -> None:
    viewer = accounts.create_user(hub.db, f"v-{uuid.uuid4().hex[:6]}@example.com", "a long password!!").id
    accounts.add_member(hub.db, hub.tenant_id, viewer, "viewer")
    flow = flows.create_flow(hub.db, hub.tenant_id, "kept")
    with pytest.raises(PermissionDeniedError):
        flows.rename_flow(hub.db, hub.tenant_id, flow.id, "renamed", user_id=viewer)
    with pytest.raises(PermissionDeniedError):
        flows.delete_flow(hub.db, hub.bus, hub.tenant_id, flow.id, user_id=viewer)
    assert [f.name for f in list_flows(hub.db, hub.tenant_id)] == ["kept"]
