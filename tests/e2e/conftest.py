"""Browser tests: Debian's chromium driven by playwright (never `playwright install`), against `hub up`."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.services import accounts
from app.storage import migrations
from app.storage.db import Database
from tests.hub_process import HubProcess

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
OWNER_EMAIL = "owner@example.com"
OWNER_PASSWORD = "a long enough password"


def chromium_path() -> str | None:
    return os.environ.get("HUB_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    path = chromium_path()
    if path is None:
        if os.environ.get("HUB_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed (apt-get install chromium); .ci/run installs it")
        pytest.skip("browser tests need Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A hub with one owner in two tenants, served in production mode by `hub up`."""
    data_dir = tmp_path_factory.mktemp("hub-e2e")
    url = f"sqlite:///{data_dir / 'hub.db'}"
    migrations.upgrade(url)
    db = Database.connect(url)
    try:
        owner = accounts.create_user(db, OWNER_EMAIL, OWNER_PASSWORD, "Olivia Owner")
        for name in ("Acme", "Beta Corp"):
            tenant = accounts.create_tenant(db, name)
            accounts.add_member(db, tenant.id, owner.id, "owner" if name == "Acme" else "viewer")
    finally:
        db.dispose()
    process = HubProcess(data_dir)
    try:
        process.start()
        yield process
    finally:
        process.kill_everything()


def screenshot(page: object, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


class ConsoleWatcher:
    """Collects the page's console errors and uncaught exceptions: a page that logs errors is a broken page."""

    def __init__(self, page, origin: str = "") -> None:
        """`origin`: only problems of pages there count (a test that visits another site, e.g. an OAuth2
        provider's login page, is not about that site's console)."""
        self.problems: list[str] = []

        def ours() -> bool:
            return not origin or page.url.startswith(origin)

        page.on(
            "console",
            lambda msg: (
                self.problems.append(f"console.{msg.type}: {msg.text}")
                if msg.type == "error" and ours()
                else None
            ),
        )
        page.on("pageerror", lambda exc: self.problems.append(f"pageerror: {exc}") if ours() else None)


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def login(page, hub: HubProcess, password: str = OWNER_PASSWORD, *, succeed: bool = True) -> None:
    page.goto(f"{hub.base_url}/login")
    page.locator("#email").fill(OWNER_EMAIL)
    page.locator("#password").fill(password)
    page.get_by_test_id("login-submit").click()
    if succeed:
        page.wait_for_url("**/dashboard**")
