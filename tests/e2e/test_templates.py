"""Templates in a real browser: a shipped template becomes a flow in two clicks; an exported flow file imported
here asks for the credential its step needs; a foreign file is refused with the reason."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ConsoleWatcher, login, screenshot

pytestmark = pytest.mark.browser

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
