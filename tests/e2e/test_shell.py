"""The app shell in a real browser against the production build: login, pages, tenant switch, logout."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import OWNER_EMAIL, ConsoleWatcher, login, screenshot

pytestmark = pytest.mark.browser
PAGES = [
    ("dashboard", "Dashboard"),
    ("flows", "Flows"),
    ("catalog", "Catalog"),
    ("credentials", "Credentials"),
    ("runs", "Runs"),
    ("settings", "Settings"),
    ("tokens", "API tokens"),
    ("audit", "Audit log"),
    ("members", "Members"),
]
TIMEOUT = 20_000


def _session_cookie(page) -> str:
    return next((c["value"] for c in page.context.cookies() if c["name"] == "hub_session"), "")


def test_guest_is_sent_to_login(hub, page) -> None:
    watcher = ConsoleWatcher(page)
    page.goto(f"{hub.base_url}/runs")
    page.wait_for_url("**/login**")
    page.get_by_test_id("login-submit").wait_for()
    screenshot(page, "login")
    assert watcher.problems == []


def test_wrong_password_shows_message_and_opens_no_session(hub, page) -> None:
    login(page, hub, password="not the password", succeed=False)
    expect(page.get_by_test_id("form-error")).to_have_text("Wrong e-mail or password.")
    assert "/login" in page.url
    assert _session_cookie(page) == ""
    page.goto(f"{hub.base_url}/flows")
    page.wait_for_url("**/login**")


def test_login_every_page_switch_tenant_logout(hub, page) -> None:
    watcher = ConsoleWatcher(page)
    login(page, hub)
    expect(page.get_by_test_id("page-title")).to_have_text("Dashboard")  # the home page
    expect(page.get_by_test_id("user-email")).to_have_text(OWNER_EMAIL)
    assert _session_cookie(page).startswith("hs_")

    for route, title in PAGES:
        page.get_by_test_id(f"nav-{route}").click()
        page.wait_for_url(f"**/{route}**")
        page.get_by_test_id("page-title").filter(has_text=title).wait_for()
        screenshot(page, f"page-{route}")
    # Members lists the members of the current tenant only.
    expect(page.get_by_test_id("members-table")).to_contain_text(OWNER_EMAIL)

    page.get_by_test_id("tenant-switcher").click()
    page.get_by_role("option", name="Beta Corp").click()
    page.get_by_text("Now working in Beta Corp.").wait_for()
    page.reload()
    expect(page.get_by_test_id("tenant-switcher")).to_have_text("Beta Corp")

    page.get_by_test_id("logout").click()
    page.wait_for_url("**/login**")
    page.goto(f"{hub.base_url}/settings")
    page.wait_for_url("**/login**")
    assert watcher.problems == []


def test_session_survives_a_restart_of_the_hub(hub, page) -> None:
    login(page, hub)
    assert hub.interrupt() == 0
    hub.start()
    page.goto(f"{hub.base_url}/credentials")
    page.get_by_test_id("page-title").filter(has_text="Credentials").wait_for()
    expect(page.get_by_test_id("user-email")).to_have_text(OWNER_EMAIL)
