"""First-run set-up in the browser: offered only while the hub has no user."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.hub_process import HubProcess

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def empty_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    process = HubProcess(tmp_path_factory.mktemp("hub-empty"))
    try:
        process.start()
        yield process
    finally:
        process.kill_everything()


def test_first_visit_sets_up_the_hub_then_setup_is_gone(empty_hub, browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(f"{empty_hub.base_url}/login")
        page.wait_for_url("**/setup**")
        page.locator("#email").fill("first@example.com")
        page.locator("#password").fill("short")
        page.locator("#password_again").fill("short")
        page.locator("#tenant").fill("First Co")
        page.get_by_test_id("setup-submit").click()
        expect(page.get_by_test_id("form-error")).to_have_text("Use at least 10 characters.")

        page.locator("#password").fill("a long enough password")
        page.locator("#password_again").fill("a long enough password")
        page.get_by_test_id("setup-submit").click()
        page.wait_for_url("**/dashboard**")
        expect(page.get_by_test_id("tenant-name")).to_have_text("First Co")

        page.get_by_test_id("logout").click()
        page.wait_for_url("**/login**")
        page.goto(f"{empty_hub.base_url}/setup")
        page.wait_for_url("**/login**")
    finally:
        context.close()
