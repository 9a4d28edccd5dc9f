"""How the hub reads a token endpoint's answers (a scripted endpoint on 127.0.0.1): which errors are refusals
(stored, reconnect) and which are worth trying again; what a refusal shows; where the hub may connect at all."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.config import MasterKey
from app.errors import PermissionDeniedError, ValidationError
from app.oauth import clients, provider
from app.oauth.provider import ClientConfig, ProviderRefused, ProviderUnreachable
from app.oauth.tokens import TokenKeeper, TokenRefreshBusy, TokenRefreshFailed, needs_renewal
from app.services import accounts
from app.services import credentials as credential_service
from app.services.verification import verify_credential
from app.vault.store import Vault
from runtime.net.egress import EgressPolicy
from tests.app.hub_runtime import HubRuntime

LOCAL = EgressPolicy.parse("127.0.0.1")
SECRET = "client-secret-5e5e5e5e"


class Scripted:
    """A token endpoint that answers what the test says: (status, body, content type)."""

    def __init__(self) -> None:
        self.answer: tuple[int, str, str] = (200, "{}", "application/json")
        self.calls = 0
        script = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                script.calls += 1
                status, body, kind = script.answer
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(body.encode())))
                self.end_headers()
                self.wfile.write(body.encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def endpoint() -> Iterator[Scripted]:
    script = Scripted()
    yield script
    script.server.shutdown()


def _config(url: str) -> ClientConfig:
    return ClientConfig(client_id="c", client_secret=SECRET, token_url=url)


@pytest.mark.parametrize(
    ("status", "body", "kind", "outcome"),
    [
        (
            400,
            '{"error": "invalid_grant", "error_description": "expired"}',
            "application/json",
            ProviderRefused,
        ),
        (401, '{"error": "invalid_client"}', "application/json", ProviderRefused),
        (400, '{"error": "temporarily_unavailable"}', "application/json", ProviderUnreachable),
        (429, '{"error": "rate_limited"}', "application/json", ProviderUnreachable),
        (503, "<html>down for maintenance</html>", "text/html", ProviderUnreachable),
        (200, '{"token_type": "Bearer"}', "application/json", ProviderUnreachable),
    ],
)
def test_only_real_refusals_count_as_refusals(endpoint: Scripted, status, body, kind, outcome) -> None:
    endpoint.answer = (status, body, kind)
    with pytest.raises(outcome):
        provider.refresh(_config(endpoint.url), "rt-1", egress=LOCAL)


def test_a_tenants_token_url_may_not_point_into_the_hubs_network(endpoint: Scripted) -> None:
    endpoint.answer = (200, '{"access_token": "at", "expires_in": 60}', "application/json")
    with pytest.raises(ProviderRefused, match="internal address"):
        provider.client_credentials(_config(endpoint.url), egress=EgressPolicy())
    assert endpoint.calls == 0
    assert provider.client_credentials(_config(endpoint.url), egress=LOCAL)["access_token"] == "at"


def test_a_short_lived_token_is_not_due_the_moment_it_arrives() -> None:
    fresh = {"access_token": "a" * 10, "expires_in": 30.0, "expires_at": time.time() + 30}
    assert not needs_renewal("oauth2_client", fresh)
    assert needs_renewal("oauth2_client", {**fresh, "expires_at": time.time() + 10})


@pytest.fixture
def setup(hub: HubRuntime):
    vault = Vault([MasterKey(key_id="k", key=os.urandom(32))])
    admin = accounts.create_user(hub.db, f"adm-{uuid.uuid4().hex[:6]}@example.com", "a long password!!")
    accounts.add_member(hub.db, hub.tenant_id, admin.id, "admin")
    return vault, admin.id


def _machine(hub: HubRuntime, vault: Vault, admin: uuid.UUID, url: str) -> uuid.UUID:
    return credential_service.create_credential(
        hub.db, vault, hub.components, hub.tenant_id, admin, name="Machine", kind="oauth2_client",
        values={"token_url": url, "client_id": "c", "client_secret": SECRET},
    ).id  # fmt: skip


def test_a_refusal_that_quotes_the_secret_is_stored_masked(hub: HubRuntime, redis, setup, endpoint) -> None:
    vault, admin = setup
    endpoint.answer = (401, json.dumps({"error": "invalid_client", "error_description": f"bad secret {SECRET}"}),
                       "application/json")  # fmt: skip
    machine = _machine(hub, vault, admin, endpoint.url)
    with pytest.raises(TokenRefreshFailed) as refused:
        TokenKeeper(hub.db, lambda: vault, redis, LOCAL).fresh(hub.tenant_id, machine)
    assert SECRET not in str(refused.value) and "bad secret ••••••" in str(refused.value)
    [view] = credential_service.list_credentials(hub.db, hub.tenant_id, admin)
    assert view.status == "error" and SECRET not in (view.status_reason or "")


def test_a_failed_verify_for_a_passing_reason_does_not_stop_renewals(
    hub: HubRuntime, redis, setup, endpoint
) -> None:
    vault, admin = setup
    endpoint.answer = (503, "<html>down</html>", "text/html")
    machine = _machine(hub, vault, admin, endpoint.url)
    tokens = TokenKeeper(hub.db, lambda: vault, redis, LOCAL)
    result = verify_credential(hub.db, vault, hub.components, tokens, LOCAL, hub.tenant_id, admin, machine)
    assert result.outcome == "failed" and "failed for now" in result.message
    [view] = credential_service.list_credentials(hub.db, hub.tenant_id, admin)
    assert view.status == "ok"  # nothing lasting was learnt
    endpoint.answer = (200, '{"access_token": "at-2", "expires_in": 3600}', "application/json")
    assert tokens.fresh(hub.tenant_id, machine)["access_token"] == "at-2"
    with pytest.raises(
        TokenRefreshBusy
    ):  # and a passing failure of the renewal itself is retried, not stored
        endpoint.answer = (503, "<html>down</html>", "text/html")
        from tests.app.oauth.test_connect_and_refresh import make_due

        make_due(hub, vault, machine)
        tokens.fresh(hub.tenant_id, machine)


def test_discovery_is_for_admins_and_stays_out_of_the_hubs_network(
    hub: HubRuntime, setup, oidc_server
) -> None:
    _vault, admin = setup
    editor = accounts.create_user(hub.db, f"ed-{uuid.uuid4().hex[:6]}@example.com", "a long password!!")
    accounts.add_member(hub.db, hub.tenant_id, editor.id, "editor")
    with pytest.raises(PermissionDeniedError):
        clients.discovered_settings(hub.db, hub.tenant_id, editor.id, oidc_server.issuer, LOCAL)
    with pytest.raises(ValidationError, match="internal address"):
        clients.discovered_settings(hub.db, hub.tenant_id, admin, oidc_server.issuer, EgressPolicy())
    with pytest.raises(ValidationError, match="not an issuer URL"):
        clients.discovered_settings(hub.db, hub.tenant_id, admin, f"{oidc_server.issuer}/x?y=1", LOCAL)
    found = clients.discovered_settings(hub.db, hub.tenant_id, admin, oidc_server.issuer, LOCAL)
    assert found["token_url"] == f"{oidc_server.issuer}/token"
