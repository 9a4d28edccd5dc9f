"""The Credentials page in a real browser against `hub up`, with a real OpenID provider on 127.0.0.1: a canary
saved through the form never shows again nor lands in the database file, the logs or the run records; editing
keeps what is left empty; delete is refused while an active flow uses it; Connect signs in at the provider and
names the account; a viewer sees no credentials."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from playwright.sync_api import expect

from app.processes.embedded_redis import free_port
from app.services import accounts, flows
from app.storage.db import Database
from app.storage.models import Credential, Run, RunLogLine, StepExecution
from app.storage.scoping import tenant_session
from runtime.bus.streams import StreamsBus
from runtime.components.builtin import builtin_registry
from tests.conftest import OIDC_CLIENT_ID, OIDC_CLIENT_SECRET
from tests.e2e.conftest import OWNER_EMAIL, OWNER_PASSWORD, ConsoleWatcher, login, screenshot
from tests.http_server import LocalHTTPServer
from tests.hub_process import HubProcess

pytestmark = pytest.mark.browser
CANARY = "canary-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def provider(oidc_server_factory):
    port = free_port()
    op = oidc_server_factory(
        [f"http://127.0.0.1:{port}/oauth/callback", f"http://127.0.0.1:{port}/auth/oidc/callback"]
    )
    return port, op


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, provider, container_engine) -> Iterator[HubProcess]:
    """A hub whose public address is the one the browser uses (the OAuth2 callback comes back to it), with single
    sign-on through the test provider, and the docker executor on the tests' engine (components from images)."""
    from app.storage import migrations

    port, op = provider
    data_dir = tmp_path_factory.mktemp("hub-credentials")
    url = f"sqlite:///{data_dir / 'hub.db'}"
    migrations.upgrade(url)
    db = Database.connect(url)
    try:
        owner = accounts.create_user(db, OWNER_EMAIL, OWNER_PASSWORD, "Olivia Owner")
        acme = accounts.create_tenant(db, "Acme")
        accounts.add_member(db, acme.id, owner.id, "owner")
        beta = accounts.create_tenant(db, "Beta Corp")
        accounts.add_member(db, beta.id, owner.id, "viewer")
    finally:
        db.dispose()
    process = HubProcess(data_dir, port=port, extra_env={
        "HUB_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "HUB_EGRESS_ALLOW": "127.0.0.1",
        "HUB_OIDC_ISSUER": op.issuer,
        "HUB_OIDC_CLIENT_ID": OIDC_CLIENT_ID,
        "HUB_OIDC_CLIENT_SECRET": OIDC_CLIENT_SECRET,
        "HUB_EXECUTOR": "docker",
        "DOCKER_HOST": container_engine.url,
    })  # fmt: skip
    try:
        process.start()
        yield process
    finally:
        process.kill_everything()


@pytest.fixture(scope="module")
def db(hub) -> Iterator[Database]:
    database = Database.connect(f"sqlite:///{hub.data_dir / 'hub.db'}")
    yield database
    database.dispose()


# A field each kind's form has: choosing a kind re-renders the form, so typing waits until it is there.
FIRST_FIELD = {"api_key": "credential-field-key", "basic": "credential-field-password",
               "oauth2_code": "credential-connect", "registry": "credential-field-registry"}  # fmt: skip


def _open_new(page, kind: str) -> None:
    page.get_by_test_id("credential-new").click()
    expect(page.get_by_test_id("credential-editor")).to_be_visible()
    page.get_by_test_id("credential-kind").select_option(kind)
    expect(page.get_by_test_id("credential-kind")).to_have_value(kind)
    expect(page.get_by_test_id(FIRST_FIELD[kind])).to_be_visible()


def _row(page, name: str):
    return page.get_by_test_id("credential-row").filter(has_text=name)


def _wait_for(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_a_canary_saved_in_the_form_is_never_shown_stored_logged_or_recorded(page, hub, db) -> None:
    console = ConsoleWatcher(page)
    login(page, hub)
    page.goto(f"{hub.base_url}/credentials")
    expect(page.get_by_test_id("no-credentials")).to_be_visible()
    _open_new(page, "api_key")
    page.get_by_test_id("credential-save").click()
    expect(page.get_by_test_id("field-error").first).to_contain_text("is required")
    page.get_by_test_id("credential-name-input").fill("Shop API")
    page.get_by_test_id("credential-field-key").fill(CANARY)
    page.get_by_test_id("credential-field-header").fill("X-Shop-Key")
    page.get_by_test_id("credential-save").click()
    expect(page.get_by_test_id("credentials-notice")).to_contain_text("Saved 'Shop API'")
    expect(_row(page, "Shop API")).to_contain_text("API key")
    # Edit: the key is not in the form (write-only), the header is; saving with the key empty keeps it.
    _row(page, "Shop API").get_by_test_id("credential-edit").click()
    expect(page.get_by_test_id("credential-field-key")).to_have_value("")
    expect(page.get_by_test_id("credential-field-key")).to_have_attribute(
        "placeholder", "saved — type to replace"
    )
    expect(page.get_by_test_id("credential-field-header")).to_have_value("X-Shop-Key")
    page.get_by_test_id("credential-save").click()
    expect(page.get_by_test_id("credentials-notice")).to_contain_text("Saved 'Shop API'")
    assert CANARY not in page.content()
    screenshot(page, "credentials-list")

    acme = accounts.find_tenant_by_slug(db, "acme")
    with tenant_session(db.sessions, acme.id) as session:
        credential_id = session.scalar(sa.select(Credential.id).where(Credential.name == "Shop API"))
    client = redis.Redis.from_url((hub.data_dir / "redis" / "url").read_text())
    with LocalHTTPServer() as server:
        nodes = [
            {"id": "start", "component": "manual", "function": "start"},
            {"id": "call", "component": "http", "function": "request", "credential_id": str(credential_id),
             "fields": {"method": "GET", "url": f"{server.url}/echo"}},
            {"id": "log", "component": "log", "function": "log", "fields": {"message": "$string($)"}},
        ]  # fmt: skip
        edges = [{"source": "start", "target": "call"}, {"source": "call", "target": "log"}]
        flow = flows.create_flow(db, acme.id, "Canary", {"nodes": nodes, "edges": edges})
        flows.publish_flow(db, StreamsBus(client), builtin_registry(), acme.id, flow.id)
        from app.services import runs

        run_id = runs.start_manual_run(db, StreamsBus(client), builtin_registry(), acme.id, flow.id, {"n": 1})

        def finished():
            with tenant_session(db.sessions, acme.id) as session:
                return session.scalar(sa.select(Run.status).where(Run.id == run_id)) in (
                    "succeeded",
                    "failed",
                )

        _wait_for(finished)
        assert server.hits["/echo"] == 1  # the server got the key (it echoes it back into the run's data)
    with tenant_session(db.sessions, acme.id) as session:
        recorded = repr(session.scalars(sa.select(StepExecution).where(StepExecution.run_id == run_id)).all())
        recorded += repr([(s.input, s.output, s.error) for s in session.scalars(sa.select(StepExecution))])
        recorded += repr([line.message for line in session.scalars(sa.select(RunLogLine))])
        run = session.get(Run, run_id)
        assert run.status == "succeeded", run.error
    assert "x-shop-key" in recorded.lower() and CANARY not in recorded
    client.close()
    # The flow's export (the button on its page) names what the step needs, never the key.
    page.goto(f"{hub.base_url}/flows/{flow.id}")
    expect(page.get_by_test_id("flow-name")).to_have_text("Canary")
    with page.expect_download() as download:
        page.get_by_test_id("export-flow").click()
    exported = Path(download.value.path()).read_text()
    assert '"credential_needed"' in exported and CANARY not in exported and str(credential_id) not in exported
    db.dispose()
    assert CANARY.encode() not in (hub.data_dir / "hub.db").read_bytes()
    for log in hub.data_dir.rglob("*.log"):
        assert CANARY not in log.read_text(errors="replace"), log
    assert console.problems == []


def test_delete_is_refused_while_an_active_flow_uses_the_credential(page, hub, db) -> None:
    login(page, hub)
    page.goto(f"{hub.base_url}/credentials")
    _open_new(page, "basic")
    page.get_by_test_id("credential-name-input").fill("Partner login")
    page.get_by_test_id("credential-field-username").fill("partner")
    page.get_by_test_id("credential-field-password").fill("partner-password-1")
    page.get_by_test_id("credential-save").click()
    expect(_row(page, "Partner login")).to_be_visible()
    acme = accounts.find_tenant_by_slug(db, "acme")
    with tenant_session(db.sessions, acme.id) as session:
        credential_id = session.scalar(sa.select(Credential.id).where(Credential.name == "Partner login"))
    client = redis.Redis.from_url((hub.data_dir / "redis" / "url").read_text())
    nodes = [
        {"id": "start", "component": "manual", "function": "start"},
        {"id": "call", "component": "http", "function": "request", "credential_id": str(credential_id),
         "fields": {"method": "GET", "url": "https://partner.example.com"}},
    ]  # fmt: skip
    flow = flows.create_flow(
        db, acme.id, "Partner sync", {"nodes": nodes, "edges": [{"source": "start", "target": "call"}]}
    )
    flows.publish_flow(db, StreamsBus(client), builtin_registry(), acme.id, flow.id)
    flows.activate_flow(db, StreamsBus(client), builtin_registry(), acme.id, flow.id)
    client.close()
    page.reload()
    expect(_row(page, "Partner login")).to_contain_text("Partner sync (active)")
    _row(page, "Partner login").get_by_test_id("credential-delete").click()
    page.get_by_test_id("confirm-delete").click()
    expect(page.get_by_test_id("credentials-error")).to_contain_text(
        "used by these active flows: Partner sync"
    )
    expect(_row(page, "Partner login")).to_be_visible()


def test_connect_signs_in_at_the_provider_and_names_the_account(page, hub, provider) -> None:
    _, op = provider
    console = ConsoleWatcher(page, origin=hub.base_url)
    login(page, hub)
    page.goto(f"{hub.base_url}/credentials")
    page.get_by_test_id("client-new").click()
    page.get_by_test_id("client-issuer").fill(op.issuer)
    page.get_by_test_id("client-discover").click()
    expect(page.get_by_test_id("client-token_url")).to_have_value(f"{op.issuer}/token")
    page.get_by_test_id("client-name").fill("Test provider")
    page.get_by_test_id("client-client_id").fill(OIDC_CLIENT_ID)
    page.get_by_test_id("client-client_secret").fill(OIDC_CLIENT_SECRET)
    page.get_by_test_id("client-save").click()
    expect(page.get_by_test_id("oauth-client-row")).to_contain_text("Test provider")

    _open_new(page, "oauth2_code")
    page.get_by_test_id("credential-name-input").fill("CRM account")
    page.get_by_test_id("credential-connect").click()
    # The provider's own login and consent pages.
    page.wait_for_url(f"{op.issuer}/**")
    page.locator("input[name=login]").fill("carol")
    page.locator("input[name=password]").fill("anything")
    page.locator("button[type=submit]").click()
    page.locator("button[type=submit]").click()  # consent
    page.wait_for_url(f"{hub.base_url}/credentials**")
    expect(page.get_by_test_id("credentials-notice")).to_contain_text(
        "Connected 'CRM account' as carol@example.com"
    )
    expect(_row(page, "CRM account")).to_contain_text("carol@example.com")
    _row(page, "CRM account").get_by_test_id("credential-verify").click()
    expect(page.get_by_test_id("credentials-notice")).to_contain_text(
        "Verified: the provider accepts the access token of carol@example.com"
    )
    screenshot(page, "credentials-connected")
    # The provider stops renewing (access revoked): the next renewal, as a worker does it before a step, is
    # refused, and the page says so with what to do.
    op.fail_refresh(True)
    try:
        _renew_as_a_worker(hub, "CRM account")
    finally:
        op.fail_refresh(False)
    page.reload()
    expect(_row(page, "CRM account").get_by_test_id("credential-reason")).to_contain_text(
        'refused to renew the access token (invalid_grant: refresh token revoked (test)); reconnect "CRM account"'
    )
    expect(_row(page, "CRM account").get_by_test_id("credential-status-error")).to_be_visible()
    assert console.problems == []


def _renew_as_a_worker(hub: HubProcess, name: str) -> None:
    from app.config import load_settings
    from app.keyring import load_key_ring
    from app.oauth.tokens import TokenKeeper, TokenRefreshFailed
    from app.vault.store import Vault
    from runtime.net.egress import EgressPolicy

    db = Database.connect(f"sqlite:///{hub.data_dir / 'hub.db'}")
    client = redis.Redis.from_url((hub.data_dir / "redis" / "url").read_text())
    try:
        vault = Vault(load_key_ring(load_settings(data_dir=hub.data_dir)))
        acme = accounts.find_tenant_by_slug(db, "acme")
        with tenant_session(db.sessions, acme.id) as session:
            credential = session.scalar(sa.select(Credential).where(Credential.name == name))
            values = vault.reveal(session, credential)
            vault.replace_values(session, credential, {**values, "expires_at": time.time() + 10})
            credential_id = credential.id
        keeper = TokenKeeper(db, lambda: vault, client, EgressPolicy.parse("127.0.0.1"))
        with pytest.raises(TokenRefreshFailed):
            keeper.fresh(acme.id, credential_id)
    finally:
        client.close()
        db.dispose()


def test_a_viewer_sees_no_credentials(page, hub) -> None:
    login(page, hub)
    page.get_by_test_id("tenant-switcher").click()
    page.get_by_role("option", name="Beta Corp").click()
    page.goto(f"{hub.base_url}/credentials")
    expect(page.get_by_test_id("credentials-error")).to_contain_text(
        "Your role here (viewer) cannot see credentials"
    )
    expect(page.get_by_test_id("credential-new")).to_have_count(0)


def test_single_sign_on_logs_in_a_known_member_and_refuses_a_stranger(page, hub, provider) -> None:
    _, op = provider
    console = ConsoleWatcher(page, origin=hub.base_url)
    page.goto(f"{hub.base_url}/login")
    page.get_by_test_id("login-sso").click()
    page.wait_for_url(f"{op.issuer}/**")
    page.locator("input[name=login]").fill(OWNER_EMAIL)  # matched by the provider's verified e-mail
    page.locator("input[name=password]").fill("anything")
    page.locator("button[type=submit]").click()
    page.locator("button[type=submit]").click()  # consent
    page.wait_for_url(f"{hub.base_url}/dashboard**")
    expect(page.get_by_test_id("user-email")).to_have_text(OWNER_EMAIL)
    screenshot(page, "sso-logged-in")
    # A stranger (their own browser) whom the provider knows but the hub does not: refused, with the reason.
    stranger = page.context.browser.new_context().new_page()
    stranger.goto(f"{hub.base_url}/login")
    stranger.get_by_test_id("login-sso").click()
    stranger.wait_for_url(f"{op.issuer}/**")
    stranger.locator("input[name=login]").fill("mallory")
    stranger.locator("input[name=password]").fill("anything")
    stranger.locator("button[type=submit]").click()
    stranger.locator("button[type=submit]").click()
    stranger.wait_for_url(f"{hub.base_url}/login**")
    expect(stranger.get_by_text("There is no account here for mallory@example.com")).to_be_visible()
    stranger.context.close()
    assert console.problems == []


def test_a_component_image_is_pulled_with_the_registry_login_kept_in_the_vault(
    page, hub, container_engine, registry
) -> None:
    import docker

    from tests.conftest import REGISTRY_USERS
    from tests.registry_server import push_component_image, remove_pulled

    [(user, password)] = REGISTRY_USERS.items()
    engine = docker.DockerClient(base_url=container_engine.url)
    descriptor = {"title": "Registry probe", "version": "3.0.0", "x-hub": {"runtime": "docker"},
                  "actions": {"echo": {"title": "Echo", "main": "probe.echo"}}}  # fmt: skip
    reference = push_component_image(engine, registry, descriptor, (user, password))
    try:
        login(page, hub)
        page.goto(f"{hub.base_url}/catalog")
        page.get_by_test_id("image-reference").fill(reference)
        page.get_by_test_id("add-image").click()
        expect(page.get_by_test_id("import-error")).to_contain_text(
            "asks for a login: add a container-registry"
        )

        page.goto(f"{hub.base_url}/credentials")
        _open_new(page, "registry")
        page.get_by_test_id("credential-name-input").fill("Team registry")
        page.get_by_test_id("credential-field-registry").fill(registry.host)
        page.get_by_test_id("credential-field-username").fill(user)
        page.get_by_test_id("credential-field-password").fill(password)
        page.get_by_test_id("credential-save").click()
        expect(_row(page, "Team registry")).to_be_visible()
        assert password not in page.content()  # write-only, like every secret

        page.goto(f"{hub.base_url}/catalog")
        page.get_by_test_id("image-reference").fill(reference)
        page.get_by_test_id("add-image").click()
        expect(page.get_by_test_id("import-result")).to_contain_text(
            "3.0.0 added from its image", timeout=30_000
        )
        page.get_by_test_id("catalog-search").fill("registry probe")
        expect(page.get_by_test_id("component-card").filter(has_text="docker")).to_be_visible()
    finally:
        remove_pulled(engine, reference)
