"""Quotas in Settings and the Activity page, in a real browser: a hub administrator changes a tenant's quotas
(a wrong value is refused next to the form) and sees every tenant's activity; an owner only reads them."""

from __future__ import annotations

import pytest
import redis
from playwright.sync_api import expect

from app.services import accounts
from app.storage.db import Database
from tests.e2e.conftest import OWNER_PASSWORD, ConsoleWatcher, login, screenshot

pytestmark = pytest.mark.browser
ADMIN_EMAIL = "admin@example.com"


def _make_admin(hub) -> None:
    db = Database.connect(f"sqlite:///{hub.data_dir / 'hub.db'}")
    try:
        if accounts.find_user_by_email(db, ADMIN_EMAIL) is None:
            admin = accounts.create_user(db, ADMIN_EMAIL, OWNER_PASSWORD, "Ada Admin", is_superuser=True)
            acme = accounts.find_tenant_by_slug(db, "acme")
            assert acme is not None
            accounts.add_member(db, acme.id, admin.id, "admin")
    finally:
        db.dispose()


def _login_admin(page, hub) -> None:
    page.goto(f"{hub.base_url}/login")
    page.locator("#email").fill(ADMIN_EMAIL)
    page.locator("#password").fill(OWNER_PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url("**/dashboard**")


def test_a_hub_administrator_changes_quotas_and_sees_every_tenant(hub, page) -> None:
    _make_admin(hub)
    watcher = ConsoleWatcher(page)
    _login_admin(page, hub)
    page.get_by_test_id("nav-settings").click()
    page.wait_for_url("**/settings**")
    page.get_by_test_id("quota-weight").fill("0")
    page.get_by_test_id("save-quotas").click()
    expect(page.get_by_test_id("quota-error")).to_contain_text(
        "Fair-share weight: must be between 1 and 1,000"
    )

    page.get_by_test_id("quota-weight").fill("3")
    page.get_by_test_id("quota-max_concurrent_steps").fill("2")
    page.get_by_test_id("save-quotas").click()
    expect(page.get_by_test_id("quota-saved")).to_be_visible()
    in_force = page.get_by_test_id("quota-in-force")
    expect(in_force.nth(0)).to_have_text("3")
    expect(in_force.nth(1)).to_have_text("2")
    screenshot(page, "settings-quotas")

    page.get_by_test_id("nav-activity").click()
    page.wait_for_url("**/activity**")
    expect(page.get_by_test_id("activity-table")).to_contain_text("Acme")
    expect(page.get_by_test_id("activity-table")).to_contain_text("Beta Corp")
    expect(page.get_by_test_id("activity-workers")).to_contain_text("workers running")
    page.get_by_test_id("activity-refresh").click()
    expect(page.get_by_test_id("retention-figures")).to_be_visible()
    # The egress allow list: a bad entry is named and nothing is saved; a good list is in force at once.
    page.get_by_test_id("egress-added").fill("api.corp.example\n10.0.0.0/99")
    page.get_by_test_id("save-egress").click()
    expect(page.get_by_test_id("egress-error")).to_contain_text("'10.0.0.0/99' is neither")
    page.get_by_test_id("egress-added").fill("api.corp.example\n10.1.0.0/16")
    page.get_by_test_id("save-egress").click()
    expect(page.get_by_test_id("egress-saved")).to_be_visible()
    client = redis.Redis.from_url((hub.data_dir / "redis" / "url").read_text())
    assert client.get("hub:egress:allow") == b"api.corp.example,10.1.0.0/16"  # what every worker reads
    client.close()
    screenshot(page, "activity")
    assert watcher.problems == []


def test_an_owner_reads_the_quotas_and_does_not_see_activity(hub, page) -> None:
    login(page, hub)
    page.get_by_test_id("nav-settings").click()
    page.wait_for_url("**/settings**")
    expect(page.get_by_test_id("quotas-table")).to_contain_text("Fair-share weight")
    expect(page.get_by_text("Hub administrators change these.")).to_be_visible()
    expect(page.get_by_test_id("save-quotas")).to_have_count(0)
    expect(page.get_by_test_id("nav-activity")).to_have_count(0)
    page.goto(f"{hub.base_url}/activity")
    expect(page.get_by_test_id("activity-error")).to_contain_text("Only hub administrators")
