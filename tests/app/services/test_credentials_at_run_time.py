"""A flow's step uses a vault credential by id: the worker decrypts it when the step runs; the run records never
show it; a personal credential of a member who left cannot run."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from app.config import MasterKey
from app.services import accounts, flows
from app.storage.scoping import tenant_session
from app.vault.secret_source import VaultSecrets
from app.vault.store import Vault
from runtime.net.egress import EgressPolicy
from runtime.worker import Worker, WorkerConfig
from tests.app.hub_runtime import HubRuntime
from tests.http_server import LocalHTTPServer

CANARY = "canary-5ecret-7f3a9c"


@pytest.fixture
def server():
    with LocalHTTPServer() as running:
        yield running


def _flow(
    hub: HubRuntime, url: str, credential_id: uuid.UUID, publisher: uuid.UUID | None = None
) -> uuid.UUID:
    nodes = [
        {"id": "start", "component": "manual", "function": "start"},
        {"id": "call", "component": "http", "function": "request", "credential_id": str(credential_id),
         "fields": {"method": "GET", "url": url}},
    ]  # fmt: skip
    flow = flows.create_flow(
        hub.db, hub.tenant_id, "call", {"nodes": nodes, "edges": [{"source": "start", "target": "call"}]}
    )
    flows.publish_flow(hub.db, hub.bus, hub.components, hub.tenant_id, flow.id, user_id=publisher)
    return flow.id


def _worker(hub: HubRuntime, vault: Vault) -> None:
    config = WorkerConfig(
        name="w", block_ms=10, housekeeping_interval_s=0.02, egress=EgressPolicy.parse("127.0.0.1")
    )
    hub.workers.append(
        Worker(hub.bus, hub.components, config, credentials=VaultSecrets(hub.db, lambda: vault))
    )


def _credential(hub: HubRuntime, vault: Vault, owner: uuid.UUID | None = None) -> uuid.UUID:
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        return vault.store(session, hub.tenant_id, name="API", kind="api_key", owner_user_id=owner,
                           values={"key": CANARY, "header": "X-Key"}).id  # fmt: skip


def test_the_step_sends_the_decrypted_secret_and_the_records_never_show_it(hub: HubRuntime, server) -> None:
    vault = Vault([MasterKey(key_id="k", key=os.urandom(32))])
    credential = _credential(hub, vault)
    _worker(hub, vault)
    run = hub.run_to_end(_flow(hub, f"{server.url}/echo", credential), {"n": 1})
    assert run.status == "succeeded"
    call = next(s for s in hub.steps(run.id) if s.step_id == "call")
    recorded = str(call.output) + str(call.input) + str([line.message for line in hub.logs(run.id)])
    # The server got the key (it echoes the request's headers back); what the hub stored shows only the mask.
    assert "x-key" in recorded and "••••••" in recorded
    assert CANARY not in recorded
    path = hub.db.engine.url.database
    if hub.db.engine.dialect.name == "sqlite" and path:
        hub.db.dispose()  # everything in the main file
        assert CANARY.encode() not in Path(path).read_bytes()


def test_a_personal_credential_of_a_member_who_left_cannot_run(hub: HubRuntime, server) -> None:
    vault = Vault([MasterKey(key_id="k", key=os.urandom(32))])
    leaver = accounts.create_user(hub.db, f"leaver-{uuid.uuid4().hex[:6]}@example.com", "a long password!!")
    accounts.add_member(hub.db, hub.tenant_id, leaver.id, "editor")
    credential = _credential(hub, vault, owner=leaver.id)
    flow_id = _flow(hub, f"{server.url}/echo", credential, publisher=leaver.id)  # theirs to use, then
    _remove(hub, leaver.id)
    _worker(hub, vault)
    run = hub.run_to_end(flow_id, {"n": 1})
    assert run.status == "failed"
    assert "personal to a member who left" in (run.error or "")
    assert server.hits["/echo"] == 0


def _remove(hub: HubRuntime, user_id: uuid.UUID) -> None:
    from app.storage.models import Membership

    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        session.query(Membership).filter(Membership.user_id == user_id).delete()


def test_a_process_whose_key_ring_is_behind_retries_instead_of_failing_for_good(hub: HubRuntime) -> None:
    from app.vault.store import MasterKeyMissing
    from runtime.steps.credentials import CredentialUnavailable

    vault = Vault([MasterKey(key_id="new", key=os.urandom(32))])
    credential = _credential(hub, vault)
    behind = VaultSecrets(hub.db, lambda: Vault([MasterKey(key_id="old", key=os.urandom(32))]))
    with pytest.raises(MasterKeyMissing):
        behind.credential_values(hub.tenant_id.hex, str(credential))
    with pytest.raises(CredentialUnavailable, match="does not exist"):
        VaultSecrets(hub.db, lambda: vault).credential_values(hub.new_tenant("Other").hex, str(credential))


def test_a_stored_field_named_kind_cannot_change_the_credentials_kind(hub: HubRuntime) -> None:
    vault = Vault([MasterKey(key_id="k", key=os.urandom(32))])
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        credential = vault.store(session, hub.tenant_id, name="odd", kind="api_key",
                                 values={"kind": "bearer", "key": "k-123456"}).id  # fmt: skip
    values = VaultSecrets(hub.db, lambda: vault).credential_values(hub.tenant_id.hex, str(credential))
    assert values["kind"] == "api_key" and values["key"] == "k-123456"


def test_an_edit_reaches_a_worker_that_has_the_old_values_cached(hub: HubRuntime, server) -> None:
    from app.services import credentials as credential_service
    from runtime.steps.credentials import CachedCredentials, CredentialUnavailable

    vault = Vault([MasterKey(key_id="k", key=os.urandom(32))])
    editor = accounts.create_user(hub.db, f"ed-{uuid.uuid4().hex[:6]}@example.com", "a long password!!")
    accounts.add_member(hub.db, hub.tenant_id, editor.id, "editor")
    credential = _credential(hub, vault)
    cache = CachedCredentials(VaultSecrets(hub.db, lambda: vault), ttl_s=300, generation=hub.bus.credentials_generation,
                              generation_check_s=0)  # fmt: skip
    assert cache.get(hub.tenant_id.hex, str(credential))["key"] == CANARY
    credential_service.update_credential(hub.db, vault, hub.components, hub.tenant_id, editor.id, credential,
                                         values={"key": "rotated-key-2"}, changes=hub.bus)  # fmt: skip
    assert cache.get(hub.tenant_id.hex, str(credential))["key"] == "rotated-key-2"
    credential_service.delete_credential(hub.db, hub.tenant_id, editor.id, credential, changes=hub.bus)
    with pytest.raises(CredentialUnavailable, match="does not exist"):
        cache.get(hub.tenant_id.hex, str(credential))


def test_the_first_run_of_each_version_audits_the_credentials_it_uses(hub: HubRuntime, server) -> None:
    import sqlalchemy as sa

    from app.storage.models import AuditEvent
    from app.storage.scoping import system_session

    vault = Vault([MasterKey(key_id="k", key=os.urandom(32))])
    credential = _credential(hub, vault)
    _worker(hub, vault)
    flow_id = _flow(hub, f"{server.url}/echo", credential)
    first = hub.run_to_end(flow_id, {"n": 1})
    hub.run_to_end(flow_id, {"n": 2})

    def used() -> list[AuditEvent]:
        with system_session(hub.db.sessions) as session:
            rows = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "credential.used")).all()
            session.expunge_all()
            return list(rows)

    [event] = used()
    assert (event.tenant_id, event.target_id) == (hub.tenant_id, str(credential))
    assert event.details == {"flow_id": str(flow_id), "version": 1, "run_id": str(first.id)}
    flows.publish_flow(hub.db, hub.bus, hub.components, hub.tenant_id, flow_id)  # version 2: audited again
    hub.run_to_end(flow_id, {"n": 3})
    assert [e.details["version"] for e in used()] == [1, 2]
