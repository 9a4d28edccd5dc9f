"""Members, API tokens, invitations, the audit log and templates in a real browser against `hub up` (one hub for
all: starting one is the slow part): a token made on its page works against the hub's own /api/v1 (and stops
when revoked); an invitation link makes a new account a member; roles change; the audit log shows it; another
tenant's ids are "not found" on every page that takes one; a shipped template becomes a flow in two clicks; an
exported flow file imported here asks for the credential its step needs; a foreign file is refused."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from playwright.sync_api import expect

from app.services import accounts, flows
from app.storage.db import Database
from app.storage.models import Run
from app.storage.scoping import tenant_session
from tests.e2e.conftest import OWNER_PASSWORD, ConsoleWatcher, login, screenshot

pytestmark = pytest.mark.browser


def _db(hub) -> Database:
    return Database.connect(f"sqlite:///{hub.data_dir / 'hub.db'}")


def test_a_token_made_on_its_page_works_against_the_api_until_revoked(hub, page) -> None:
    watcher = ConsoleWatcher(page)
    login(page, hub)
    page.get_by_test_id("nav-tokens").click()
    page.get_by_test_id("page-title").filter(has_text="API tokens").wait_for()
    page.get_by_test_id("token-name").fill("deploy script")
    page.get_by_test_id("token-create").click()
    token = page.get_by_test_id("token-value").inner_text(timeout=20_000)
    assert token.startswith("hub_pat_")
    expect(page.get_by_test_id("token-row")).to_contain_text("deploy script")
    expect(page.get_by_test_id("token-row")).to_contain_text("read")
    screenshot(page, "api-tokens")

    api = f"{hub.base_url}/api/v1"
    headers = {"Authorization": f"Bearer {token}"}
    listed = httpx.get(f"{api}/flows", headers=headers)
    assert listed.status_code == 200 and isinstance(listed.json(), list)
    refused = httpx.post(f"{api}/flows", json={"name": "x"}, headers=headers)
    assert refused.status_code == 403 and "'write' scope" in refused.json()["message"]
    assert httpx.get(f"{api}/openapi.json").json()["components"]["schemas"]["FlowGraph"]

    page.reload()  # shown once: gone after a reload
    expect(page.get_by_test_id("token-row")).to_contain_text("deploy script")
    expect(page.get_by_test_id("token-value")).to_have_count(0)
    page.get_by_test_id("token-revoke").click()
    expect(page.get_by_test_id("token-row")).to_contain_text("revoked")
    assert httpx.get(f"{api}/flows", headers=headers).status_code == 401
    assert watcher.problems == []


def test_an_invitation_link_makes_a_new_account_a_member(hub, page, browser) -> None:
    watcher = ConsoleWatcher(page)
    login(page, hub)
    page.get_by_test_id("nav-members").click()
    page.get_by_test_id("page-title").filter(has_text="Members").wait_for()
    page.get_by_test_id("invite-submit").click()  # anyone with the link, as editor, for 3 days
    link = page.get_by_test_id("invite-link").inner_text(timeout=20_000)
    assert "/invite/hub_inv_" in link
    expect(page.get_by_test_id("invitation-row")).to_contain_text("pending")

    newcomer = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    newcomer.set_default_timeout(20_000)
    newcomer.goto(link)
    expect(newcomer.get_by_text("invites you to Acme as editor")).to_be_visible()
    newcomer.get_by_test_id("invite-toggle").click()
    email = f"new-{uuid.uuid4().hex[:6]}@example.com"
    newcomer.locator("#email").fill(email)
    newcomer.locator("#name").fill("Nina Newcomer")
    newcomer.locator("#password").fill(OWNER_PASSWORD)
    newcomer.get_by_test_id("invite-join").click()
    newcomer.wait_for_url("**/dashboard**")
    expect(newcomer.get_by_test_id("tenant-name")).to_have_text("Acme")
    newcomer.goto(link)  # used once
    expect(newcomer.get_by_text("This link cannot be used.")).to_be_visible()
    newcomer.context.close()

    page.reload()
    row = page.get_by_test_id("member-row").filter(has_text=email)
    expect(row).to_be_visible()
    row.get_by_test_id("member-role").click()
    page.get_by_role("option", name="viewer").click()
    expect(page.get_by_test_id("members-error")).to_have_count(0)
    page.reload()
    expect(
        page.get_by_test_id("member-row").filter(has_text=email).get_by_test_id("member-role")
    ).to_have_text("viewer")
    screenshot(page, "members")

    page.get_by_test_id("nav-audit").click()
    page.get_by_test_id("page-title").filter(has_text="Audit log").wait_for()
    expect(page.get_by_test_id("audit-table")).to_contain_text("member.role_changed")
    expect(page.get_by_test_id("audit-table")).to_contain_text("member.joined")
    expect(page.get_by_test_id("audit-table")).to_contain_text("login.succeeded")
    page.get_by_test_id("audit-category").click()
    page.get_by_role("option", name="members").click()
    expect(page.get_by_test_id("audit-row").filter(has_text="login.")).to_have_count(0)
    screenshot(page, "audit-log")
    assert watcher.problems == []


def test_another_tenants_ids_are_not_found_on_every_page_that_takes_one(hub, page) -> None:
    db = _db(hub)
    try:
        acme = accounts.find_tenant_by_slug(db, "acme")
        flow = flows.create_flow(db, acme.id, f"Secret {uuid.uuid4().hex[:6]}")
        with tenant_session(db.sessions, acme.id) as session:
            run = Run(flow_id=flow.id, status="succeeded", trigger_kind="manual")
            session.add(run)
            session.flush()
            run_id = run.id
        email = f"outsider-{uuid.uuid4().hex[:6]}@example.com"
        outsider = accounts.create_user(db, email, OWNER_PASSWORD)
        accounts.add_member(db, accounts.find_tenant_by_slug(db, "beta-corp").id, outsider.id, "owner")
    finally:
        db.dispose()
    page.goto(f"{hub.base_url}/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(OWNER_PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url("**/dashboard**")
    page.goto(f"{hub.base_url}/flows/{flow.id}")
    expect(page.get_by_test_id("flow-missing")).to_contain_text("does not exist")
    page.goto(f"{hub.base_url}/runs/{run_id}")
    expect(page.get_by_test_id("run-page-error")).to_contain_text("does not exist")
    page.goto(f"{hub.base_url}/runs?flow={flow.id}")
    expect(page.get_by_test_id("run-row")).to_have_count(0)
    page.goto(f"{hub.base_url}/flows")
    expect(page.get_by_text(flow.name)).to_have_count(0)
    # An owner elsewhere is no one here: Acme's audit log and members are not theirs to read.
    page.goto(f"{hub.base_url}/audit")
    expect(page.get_by_test_id("audit-table")).not_to_contain_text("Secret")


EXPORT = {
    "format": "integration-hub.flow/1",
    "name": "Shop orders",
    "graph": {
        "nodes": [
            {"id": "hook", "component": "webhook", "function": "receive"},
            {"id": "call", "component": "http", "function": "request", "name": "Shop API",
             "fields": {"method": "GET", "url": "https://shop.example.com/orders"},
             "credential_needed": {"kind": "api_key"}},
        ],
        "edges": [{"source": "hook", "target": "call"}],
    },
}  # fmt: skip


def test_the_gallery_makes_flows_and_imports_ask_for_credentials(hub, page) -> None:
    watcher = ConsoleWatcher(page)
    login(page, hub)
    page.get_by_test_id("nav-templates").click()
    page.get_by_test_id("page-title").filter(has_text="Templates").wait_for()
    expect(page.get_by_test_id("template-card")).to_have_count(5)
    screenshot(page, "templates")
    card = page.get_by_test_id("template-card").filter(has_text="Answer a webhook synchronously")
    card.get_by_test_id("template-use").click()
    expect(page.get_by_text("This flow needs no credentials.")).to_be_visible()
    page.get_by_test_id("create-from-template").click()
    page.wait_for_url("**/flows/**")
    expect(page.get_by_test_id("flow-name")).to_have_text("Answer a webhook synchronously")

    page.goto(f"{hub.base_url}/templates")
    path = hub.data_dir / "shop.flow.json"
    path.write_text(json.dumps(EXPORT))
    page.locator("#template-upload input[type=file]").set_input_files(str(path))
    page.get_by_test_id("template-import").click()
    expect(page.get_by_text("Shop API: api_key")).to_be_visible()
    expect(page.get_by_test_id("slot-credential")).to_have_text("none for now (the step runs without one)")
    screenshot(page, "template-import")
    page.get_by_test_id("save-to-gallery").click()
    expect(page.get_by_test_id("template-card")).to_have_count(6)

    foreign = hub.data_dir / "n8n.json"
    foreign.write_text(json.dumps({"nodes": [], "connections": {}}))
    page.locator("#template-upload input[type=file]").set_input_files(str(foreign))
    page.get_by_test_id("template-import").click()
    expect(page.get_by_test_id("templates-error")).to_contain_text("looks like an n8n workflow")
    assert watcher.problems == []
