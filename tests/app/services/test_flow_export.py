"""A flow's export carries no credential (ids become what the step needs) and no credential value pasted into it."""

from __future__ import annotations

import os
import uuid

import orjson
import pytest

from app.config import MasterKey
from app.errors import NotFoundError
from app.services import accounts, flows, webhooks
from app.services import credentials as credential_service
from app.services.flow_export import FORMAT, export_flow
from app.vault.store import Vault
from tests.app.hub_runtime import HubRuntime

SECRET = "sk-canary-71b0c2d4e5"
HOOK_SECRET = "hmac-canary-99aa77"


def test_an_export_has_no_credential_ids_and_no_pasted_secret(hub: HubRuntime) -> None:
    vault = Vault([MasterKey(key_id="k", key=os.urandom(32))])
    editor = accounts.create_user(hub.db, f"ed-{uuid.uuid4().hex[:6]}@example.com", "a long password!!")
    accounts.add_member(hub.db, hub.tenant_id, editor.id, "editor")
    key = credential_service.create_credential(hub.db, vault, hub.components, hub.tenant_id, editor.id,
                                               name="Shop", kind="api_key", values={"key": SECRET})  # fmt: skip
    nodes = [
        {"id": "hook", "component": "webhook", "function": "receive"},
        {"id": "call", "component": "http", "function": "request", "credential_id": str(key.id),
         "fields": {"method": "GET", "url": f"https://shop.example.com/orders?key={SECRET}"}},
    ]  # fmt: skip
    flow = flows.create_flow(
        hub.db, hub.tenant_id, "Orders", {"nodes": nodes, "edges": [{"source": "hook", "target": "call"}]}
    )
    flows.publish_flow(hub.db, hub.bus, hub.components, hub.tenant_id, flow.id, user_id=editor.id)
    webhooks.create_url(
        hub.db, hub.bus, hub.components, hub.tenant_id, flow.id, "production", webhooks.NO_DEFAULTS
    )
    webhooks.update_settings(hub.db, hub.bus, hub.components, vault, hub.tenant_id, flow.id,
                             {"auth": "hmac", "header": "X-Signature"}, webhooks.NO_DEFAULTS,
                             secret={"secret": HOOK_SECRET}, user_id=editor.id)  # fmt: skip

    for published in (False, True):
        document = export_flow(hub.db, vault, hub.tenant_id, editor.id, flow.id, published=published)
        raw = orjson.dumps(document).decode()
        assert document["format"] == FORMAT and document["name"] == "Orders"
        assert SECRET not in raw and HOOK_SECRET not in raw and str(key.id) not in raw
        call = next(n for n in document["graph"]["nodes"] if n["id"] == "call")
        assert call["credential_needed"] == {"kind": "api_key"} and "credential_id" not in call
        assert call["fields"]["url"] == "https://shop.example.com/orders?key=••••••"
        assert document["webhook"]["auth"] == "hmac" and "credential_id" not in document["webhook"]
        assert "/hook/" not in raw  # the URL stays with this flow


def test_another_tenant_cannot_export_the_flow(hub: HubRuntime) -> None:
    vault = Vault([MasterKey(key_id="k", key=os.urandom(32))])
    flow = flows.create_flow(hub.db, hub.tenant_id, "Mine", {"nodes": [], "edges": []})
    other = hub.new_tenant("Other")
    outsider = accounts.create_user(hub.db, f"out-{uuid.uuid4().hex[:6]}@example.com", "a long password!!")
    accounts.add_member(hub.db, other, outsider.id, "owner")
    with pytest.raises(NotFoundError):
        export_flow(hub.db, vault, other, outsider.id, flow.id)
    with pytest.raises(NotFoundError):
        export_flow(hub.db, vault, hub.tenant_id, outsider.id, flow.id)  # not a member here
