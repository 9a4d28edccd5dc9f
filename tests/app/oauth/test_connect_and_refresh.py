"""OAuth2 against a real provider (oidc-provider on 127.0.0.1): Connect with PKCE and state, renewal ahead of expiry
with one token request however many workers ask at once, rotated refresh tokens kept atomically, a refused
renewal stored on the credential and failing the step clearly; client credentials."""

from __future__ import annotations

import os
import threading
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import redis as redis_lib

from app.config import MasterKey
from app.errors import NotFoundError, PermissionDeniedError, ValidationError
from app.oauth import clients, connect, provider
from app.oauth.tokens import TokenKeeper
from app.services import accounts
from app.services import credentials as credential_service
from app.storage.models import Credential
from app.storage.scoping import tenant_session
from app.vault.secret_source import VaultSecrets
from app.vault.store import Vault
from runtime.net.egress import EgressPolicy
from runtime.steps.credentials import CredentialUnavailable
from tests.app.hub_runtime import HubRuntime
from tests.conftest import OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_PLACEHOLDER_REDIRECT
from tests.oidc_server import OidcServer, authorize_without_browser

BINDING = "browser-binding-123"
LOCAL = EgressPolicy.parse("127.0.0.1")  # the test provider runs on loopback, which tenants may not reach


@pytest.fixture
def vault() -> Vault:
    return Vault([MasterKey(key_id="k", key=os.urandom(32))])


@pytest.fixture
def op(oidc_server: OidcServer) -> OidcServer:
    oidc_server.reset()
    return oidc_server


@pytest.fixture
def admin(hub: HubRuntime) -> uuid.UUID:
    user = accounts.create_user(hub.db, f"admin-{uuid.uuid4().hex[:8]}@example.com", "a long password!!")
    accounts.add_member(hub.db, hub.tenant_id, user.id, "admin")
    return user.id


def register(hub: HubRuntime, vault: Vault, admin: uuid.UUID, op: OidcServer) -> uuid.UUID:
    found = provider.discover(op.issuer, egress=LOCAL)
    settings = clients.ClientSettings(
        name="Test provider",
        client_id=OIDC_CLIENT_ID,
        client_secret=OIDC_CLIENT_SECRET,
        authorize_url=found["authorization_endpoint"],
        token_url=found["token_endpoint"],
        userinfo_url=found["userinfo_endpoint"],
        scopes=("openid", "email"),
    )
    return clients.register_client(hub.db, vault, hub.tenant_id, admin, settings).id


def connect_account(
    hub: HubRuntime, vault: Vault, redis, user: uuid.UUID, client_id: uuid.UUID, login: str = "alice"
) -> connect.Connected:
    url = connect.start_connect(hub.db, vault, redis, hub.tenant_id, user, client_id=client_id,
                                redirect_uri=OIDC_PLACEHOLDER_REDIRECT, name="Alice's account", binding=BINDING)  # fmt: skip
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["state"][0]
    back = parse_qs(urlsplit(authorize_without_browser(url, login)).query)
    return connect.finish_connect(
        hub.db, vault, redis, egress=LOCAL, state=back["state"][0], code=back["code"][0], binding=BINDING
    )


def stored(hub: HubRuntime, vault: Vault, credential_id: uuid.UUID) -> tuple[Credential, dict]:
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        credential = session.get(Credential, credential_id)
        session.expunge(credential)
        return credential, vault.reveal(session, session.get(Credential, credential_id))


def make_due(hub: HubRuntime, vault: Vault, credential_id: uuid.UUID, seconds_left: float = 20) -> None:
    """The access token now lapses within the renewal window (still valid, as a real one would be)."""
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        credential = session.get(Credential, credential_id)
        values = vault.reveal(session, credential)
        vault.replace_values(session, credential, {**values, "expires_at": time.time() + seconds_left})


def secrets_for(hub: HubRuntime, vault: Vault, redis_url: str) -> VaultSecrets:
    """What one worker process has: its own Redis connection and token keeper."""
    client = redis_lib.Redis.from_url(redis_url)
    return VaultSecrets(hub.db, lambda: vault, TokenKeeper(hub.db, lambda: vault, client, LOCAL))


def test_connect_stores_the_tokens_and_names_the_account(
    hub: HubRuntime, vault: Vault, redis, admin, op
) -> None:
    done = connect_account(hub, vault, redis, admin, register(hub, vault, admin, op))
    assert done.account == "alice@example.com" and done.name == "Alice's account"
    credential, values = stored(hub, vault, done.credential_id)
    assert credential.kind == "oauth2_code" and credential.meta["account"] == "alice@example.com"
    assert values["access_token"] and values["refresh_token"] and values["expires_at"] > time.time() + 3000
    view = credential_service.get_credential(
        hub.db, vault, hub.components, hub.tenant_id, admin, done.credential_id
    )
    assert view.account == "alice@example.com" and values["access_token"] not in repr(view)


def test_a_state_works_once_in_the_browser_that_started_it(
    hub: HubRuntime, vault: Vault, redis, admin, op
) -> None:
    client_id = register(hub, vault, admin, op)
    url = connect.start_connect(hub.db, vault, redis, hub.tenant_id, admin, client_id=client_id,
                                redirect_uri=OIDC_PLACEHOLDER_REDIRECT, binding=BINDING)  # fmt: skip
    back = parse_qs(urlsplit(authorize_without_browser(url, "bob")).query)
    state, code = back["state"][0], back["code"][0]
    with pytest.raises(connect.ConnectError, match="started in another browser"):
        connect.finish_connect(
            hub.db, vault, redis, egress=LOCAL, state=state, code=code, binding="someone else's"
        )
    with pytest.raises(connect.ConnectError, match="expired or was already used"):
        connect.finish_connect(hub.db, vault, redis, egress=LOCAL, state=state, code=code, binding=BINDING)
    url = connect.start_connect(hub.db, vault, redis, hub.tenant_id, admin, client_id=client_id,
                                redirect_uri=OIDC_PLACEHOLDER_REDIRECT, binding=BINDING)  # fmt: skip
    state = parse_qs(urlsplit(url).query)["state"][0]
    with pytest.raises(
        connect.ConnectError, match=r"did not grant access \(access_denied: the user said no\)"
    ):
        connect.finish_connect(hub.db, vault, redis, egress=LOCAL, state=state, error="access_denied",
                               error_description="the user said no", binding=BINDING)  # fmt: skip
    assert credential_service.list_credentials(hub.db, hub.tenant_id, admin) == []


def test_a_viewer_cannot_connect_and_another_tenant_cannot_use_the_client(
    hub: HubRuntime, vault: Vault, redis, admin, op
) -> None:
    client_id = register(hub, vault, admin, op)
    viewer = accounts.create_user(hub.db, f"viewer-{uuid.uuid4().hex[:8]}@example.com", "a long password!!")
    accounts.add_member(hub.db, hub.tenant_id, viewer.id, "viewer")
    with pytest.raises(PermissionDeniedError):
        connect.start_connect(hub.db, vault, redis, hub.tenant_id, viewer.id, client_id=client_id,
                              redirect_uri=OIDC_PLACEHOLDER_REDIRECT)  # fmt: skip
    other = hub.new_tenant("Other")
    accounts.add_member(hub.db, other, admin, "owner")
    with pytest.raises(NotFoundError):
        connect.start_connect(hub.db, vault, redis, other, admin, client_id=client_id,
                              redirect_uri=OIDC_PLACEHOLDER_REDIRECT)  # fmt: skip


def test_the_token_is_renewed_ahead_of_expiry_and_the_rotated_refresh_token_is_kept(
    hub: HubRuntime, vault: Vault, redis, redis_url, admin, op
) -> None:
    done = connect_account(hub, vault, redis, admin, register(hub, vault, admin, op))
    _, before = stored(hub, vault, done.credential_id)
    worker = secrets_for(hub, vault, redis_url)
    assert (
        worker.credential_values(hub.tenant_id.hex, str(done.credential_id))["access_token"]
        == before["access_token"]
    )
    assert op.counts().get("refresh_token", 0) == 0  # not due: no renewal
    make_due(hub, vault, done.credential_id)
    renewed = worker.credential_values(hub.tenant_id.hex, str(done.credential_id))
    assert renewed["access_token"] != before["access_token"] and renewed["expires_at"] > time.time() + 3000
    _, after = stored(hub, vault, done.credential_id)
    assert after["refresh_token"] != before["refresh_token"]  # the provider rotated it; the new one is stored
    # The old refresh token is consumed: the provider refuses it (and would revoke the grant). The stored one
    # works, which shows no one used the old one after the rotation.
    make_due(hub, vault, done.credential_id)
    again = worker.credential_values(hub.tenant_id.hex, str(done.credential_id))
    assert again["access_token"] not in (before["access_token"], renewed["access_token"])
    assert op.counts()["refresh_token"] == 2


def test_fifty_steps_in_two_workers_needing_the_token_at_once_make_one_token_request(
    hub: HubRuntime, vault: Vault, redis, redis_url, admin, op
) -> None:
    done = connect_account(hub, vault, redis, admin, register(hub, vault, admin, op))
    make_due(hub, vault, done.credential_id)
    workers = [secrets_for(hub, vault, redis_url), secrets_for(hub, vault, redis_url)]
    start = threading.Barrier(50)
    tokens: list[str] = []
    failures: list[BaseException] = []

    def step(index: int) -> None:
        start.wait()
        try:
            values = workers[index % 2].credential_values(hub.tenant_id.hex, str(done.credential_id))
            tokens.append(values["access_token"])
        except BaseException as exc:  # collected for the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=step, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert len(tokens) == 50 and len(set(tokens)) == 1
    assert op.counts()["refresh_token"] == 1


def test_a_refused_renewal_is_stored_shown_and_fails_the_step_without_asking_again(
    hub: HubRuntime, vault: Vault, redis, redis_url, admin, op
) -> None:
    done = connect_account(hub, vault, redis, admin, register(hub, vault, admin, op))
    make_due(hub, vault, done.credential_id)
    op.fail_refresh(True)
    worker = secrets_for(hub, vault, redis_url)
    with pytest.raises(
        CredentialUnavailable, match=r"refused to renew the access token \(invalid_grant.*reconnect"
    ):
        worker.credential_values(hub.tenant_id.hex, str(done.credential_id))
    [view] = credential_service.list_credentials(hub.db, hub.tenant_id, admin)
    assert view.status == "error" and 'reconnect "Alice\'s account"' in (view.status_reason or "")
    with pytest.raises(CredentialUnavailable, match="reconnect"):
        worker.credential_values(hub.tenant_id.hex, str(done.credential_id))
    assert op.counts()["refresh_token"] == 1
    # Reconnecting repairs it in place: same id (flows keep working), status ok.
    op.fail_refresh(False)
    url = connect.start_connect(hub.db, vault, redis, hub.tenant_id, admin, client_id=uuid.UUID(view_client(hub, done)),
                                redirect_uri=OIDC_PLACEHOLDER_REDIRECT, reconnect=done.credential_id, binding=BINDING)  # fmt: skip
    back = parse_qs(urlsplit(authorize_without_browser(url, "alice")).query)
    again = connect.finish_connect(
        hub.db, vault, redis, egress=LOCAL, state=back["state"][0], code=back["code"][0], binding=BINDING
    )
    assert again.credential_id == done.credential_id
    credential, _ = stored(hub, vault, done.credential_id)
    assert credential.status == "ok" and credential.status_reason is None
    assert worker.credential_values(hub.tenant_id.hex, str(done.credential_id))["access_token"]


def view_client(hub: HubRuntime, done: connect.Connected) -> str:
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        return session.get(Credential, done.credential_id).meta["oauth_client"]


def test_client_credentials_fetch_a_token_on_first_use_and_keep_it(
    hub: HubRuntime, vault: Vault, redis_url, admin, op
) -> None:
    found = provider.discover(op.issuer, egress=LOCAL)
    view = credential_service.create_credential(
        hub.db, vault, hub.components, hub.tenant_id, admin, name="Machine", kind="oauth2_client",
        values={"token_url": found["token_endpoint"], "client_id": OIDC_CLIENT_ID, "client_secret": OIDC_CLIENT_SECRET},
    )  # fmt: skip
    worker = secrets_for(hub, vault, redis_url)
    first = worker.credential_values(hub.tenant_id.hex, str(view.id))
    second = worker.credential_values(hub.tenant_id.hex, str(view.id))
    assert first["access_token"] and first["access_token"] == second["access_token"]
    assert op.counts()["client_credentials"] == 1
    # The form still shows only the mask for the token and the secret.
    shown = credential_service.get_credential(hub.db, vault, hub.components, hub.tenant_id, admin, view.id)
    assert first["access_token"] not in repr(shown) and OIDC_CLIENT_SECRET not in repr(shown)


def test_a_client_with_connections_cannot_be_deleted_and_settings_are_checked(
    hub: HubRuntime, vault: Vault, redis, admin, op
) -> None:
    client_id = register(hub, vault, admin, op)
    connect_account(hub, vault, redis, admin, client_id)
    with pytest.raises(ValidationError, match="used by these connections: Alice's account"):
        clients.delete_client(hub.db, hub.tenant_id, admin, client_id)
    bad = clients.ClientSettings(
        name="x", client_id="c", client_secret="s", authorize_url="ftp://a", token_url="https://t"
    )
    with pytest.raises(ValidationError, match="Authorization URL: 'ftp://a' is not an http"):
        clients.register_client(hub.db, vault, hub.tenant_id, admin, bad)
    placeholder = clients.ClientSettings(name="x", client_id="c", client_secret="s",
                                         authorize_url="https://{{prodEnv}}.salesforce.com/a", token_url="https://t")  # fmt: skip
    with pytest.raises(ValidationError, match="replace the placeholder"):
        clients.register_client(hub.db, vault, hub.tenant_id, admin, placeholder)
    [listed] = clients.list_clients(hub.db, hub.tenant_id, admin)
    assert listed.connections == 1 and OIDC_CLIENT_SECRET not in repr(listed)


def test_a_descriptors_oauth2_block_fills_the_clients_endpoints_and_scopes(hub: HubRuntime) -> None:
    from runtime.components.registry import spec_from_descriptor

    descriptor = {
        "title": "OneDrive",
        "credentials": {"oauth2": {"client_id": "{{OAUTH_CLIENT_ID}}", "client_secret": "{{OAUTH_CLIENT_SECRET}}",
                                   "auth_uri": "https://login.example.com/authorize",
                                   "token_uri": "https://login.example.com/token",
                                   "scopes": ["offline_access", "Files.ReadWrite.All"]}},
        "actions": {"upload": {"title": "Upload", "main": "./upload.js"}},
    }  # fmt: skip
    components = hub.components.with_components(
        spec_from_descriptor("onedrive", descriptor, runtime="docker")
    )
    found = clients.descriptor_defaults(components, "onedrive")
    assert found == {
        "name": "OneDrive",
        "authorize_url": "https://login.example.com/authorize",
        "token_url": "https://login.example.com/token",
        "scopes": ["offline_access", "Files.ReadWrite.All"],
        "component_name": "onedrive",
        "client_id": "",  # an environment placeholder is not a client id
    }


def test_a_clients_endpoints_cannot_move_while_connections_use_it(
    hub: HubRuntime, vault: Vault, redis, admin, op
) -> None:
    """Otherwise an admin could have every member's (personal) refresh token sent to a server of their own."""
    client_id = register(hub, vault, admin, op)
    connect_account(hub, vault, redis, admin, client_id)
    [current] = clients.list_clients(hub.db, hub.tenant_id, admin)
    moved = clients.ClientSettings(name=current.name, client_id=current.client_id, authorize_url=current.authorize_url,
                                   token_url="https://collector.example.com/token", scopes=current.scopes)  # fmt: skip
    with pytest.raises(ValidationError, match="cannot move while connections use it"):
        clients.update_client(hub.db, vault, hub.tenant_id, admin, client_id, moved)
    renamed = clients.ClientSettings(name="Renamed", client_id=current.client_id, authorize_url=current.authorize_url,
                                     token_url=current.token_url, userinfo_url=current.userinfo_url,
                                     scopes=current.scopes)  # fmt: skip
    assert clients.update_client(hub.db, vault, hub.tenant_id, admin, client_id, renamed).name == "Renamed"
