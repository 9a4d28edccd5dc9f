"""The REST API served in-process (Starlette's test client) over a real database and Redis: two tenants, members
of each role and their tokens."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from app.api.v1 import create_api, limit_body
from app.api.v1.deps import Hub
from app.config import MasterKey
from app.services import accounts, api_tokens, catalog
from app.services.catalog import TenantCatalog
from app.services.webhooks import RouteDefaults
from app.vault.store import Vault
from tests.app.hub_runtime import HubRuntime

ALL_SCOPES = ("read", "write", "run")


def unknown_ids() -> dict[str, str]:
    """A value for every path parameter of the API, naming nothing that exists."""
    return {"flow_id": str(uuid.uuid4()), "run_id": str(uuid.uuid4()), "dead_letter_id": "1-0",
            "credential_id": str(uuid.uuid4()), "component_id": str(uuid.uuid4()), "template_id": str(uuid.uuid4()),
            "number": "1", "kind": "production"}  # fmt: skip


@dataclass
class ApiWorld:
    hub: HubRuntime
    client: TestClient
    tenant_a: uuid.UUID
    tenant_b: uuid.UUID
    vault: Vault
    api: FastAPI
    enqueued: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)
    users: dict[str, uuid.UUID] = field(default_factory=dict)

    def member(self, name: str, tenant_id: uuid.UUID, role: str) -> uuid.UUID:
        # No password: API callers never log in, and hashing one costs a tenth of a second per user.
        user = accounts.create_user(self.hub.db, f"{name}-{uuid.uuid4().hex[:6]}@example.com", None)
        accounts.add_member(self.hub.db, tenant_id, user.id, role)
        self.users[name] = user.id
        return user.id

    def token(self, user: str, tenant_id: uuid.UUID, scopes=ALL_SCOPES, days: int | None = 30) -> str:
        token, _ = api_tokens.create_token(self.hub.db, tenant_id, self.users[user], f"{user} token", list(scopes),
                                           expires_in_days=days)  # fmt: skip
        return token

    def headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def world(hub: HubRuntime, redis) -> Iterator[ApiWorld]:
    catalog.sync_builtins(hub.db)
    vault = Vault([MasterKey(key_id="k", key=os.urandom(32))])
    tenant_b = hub.new_tenant("Globex")
    enqueued: list = []
    api_hub = Hub(db=hub.db, redis=redis, bus=hub.bus, vault=vault,
                  routes=RouteDefaults(public_base_url="http://hub.test"),
                  components_for=lambda tenant_id: TenantCatalog(hub.db, tenant_id),
                  enqueue=lambda t, f, u: enqueued.append((t, f)), base_url="http://hub.test")  # fmt: skip
    api = create_api(lambda: api_hub)
    with TestClient(limit_body(api), raise_server_exceptions=False) as client:  # as mounted in the hub
        world = ApiWorld(hub, client, hub.tenant_id, tenant_b, vault, api, enqueued)
        world.member("owner_a", hub.tenant_id, "owner")
        world.member("viewer_a", hub.tenant_id, "viewer")
        world.member("editor_a", hub.tenant_id, "editor")
        world.member("owner_b", tenant_b, "owner")
        yield world
