"""The designer in a real browser against `hub up`: a newcomer builds, saves, activates and calls a flow;
validation on the nodes; two editors in conflict; a 200-node flow that stays cheap to drag."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from app.config import load_settings
from app.keyring import load_key_ring
from app.services import accounts, catalog, flows
from app.services import credentials as credential_service
from app.services.catalog import TenantCatalog
from app.services.designer import read_draft
from app.storage.db import Database
from app.vault.store import Vault
from tests.e2e.conftest import OWNER_PASSWORD, ConsoleWatcher, login, screenshot

pytestmark = pytest.mark.browser

EDITOR_EMAIL = "eddie@example.com"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "components"
VIEWPORT = {"width": 1600, "height": 900}
# Whether leaving the page now would ask first (a beforeunload handler cancels the event).
LEAVING = "() => { const e = new Event('beforeunload', {cancelable: true}); window.dispatchEvent(e); return e.defaultPrevented; }"


@pytest.fixture
def page(browser) -> Iterator[object]:
    """Wider than the other pages' tests: the canvas sits between the palette and the side panel."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


@pytest.fixture(scope="module")
def db(hub) -> Iterator[Database]:
    database = Database.connect(f"sqlite:///{hub.data_dir / 'hub.db'}")
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def acme(db) -> uuid.UUID:
    tenant = accounts.find_tenant_by_slug(db, "acme")
    editor = accounts.create_user(db, EDITOR_EMAIL, OWNER_PASSWORD, "Eddie Editor")
    accounts.add_member(db, tenant.id, editor.id, "editor")
    return tenant.id


def _login_as(page, hub, email: str) -> None:
    page.goto(f"{hub.base_url}/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(OWNER_PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url("**/dashboard**")


def _drop(page, component: str, function: str, x: int, y: int) -> None:
    page.get_by_test_id(f"palette-{component}-{function}").drag_to(
        page.get_by_test_id("canvas"), target_position={"x": x, "y": y}
    )


def _connect(page, source: str, target: str) -> None:
    page.locator(f".react-flow__node[data-id='{source}'] .react-flow__handle-right").drag_to(
        page.locator(f".react-flow__node[data-id='{target}'] .react-flow__handle-left")
    )


def _new_flow(page, hub, name: str) -> None:
    page.goto(f"{hub.base_url}/flows")
    page.get_by_test_id("new-flow").click()
    page.get_by_test_id("new-flow-name").fill(name)
    page.get_by_test_id("create-flow").click()
    expect(page.get_by_test_id("flow-name")).to_have_text(name)


def test_a_newcomer_builds_a_webhook_flow_and_gets_the_transformed_reply(page, hub, acme) -> None:
    console = ConsoleWatcher(page)
    login(page, hub)
    _new_flow(page, hub, "Double the amount")
    expect(page.get_by_test_id("problem-count")).to_contain_text("1")  # an empty flow has no trigger

    _drop(page, "webhook", "receive", 80, 200)
    expect(page.locator(".react-flow__node[data-id='webhook_1']")).to_be_visible()
    _drop(page, "jsonata", "transform", 330, 200)
    _drop(page, "reply", "reply", 580, 200)
    expect(page.locator(".react-flow__node")).to_have_count(3)
    _connect(page, "webhook_1", "jsonata_1")
    _connect(page, "jsonata_1", "reply_1")
    expect(page.locator(".react-flow__edge")).to_have_count(2)
    expect(page.get_by_test_id("node-problem-jsonata_1")).to_contain_text(
        "expression"
    )  # required, still empty

    page.locator(".react-flow__node[data-id='jsonata_1']").click()
    expect(page.get_by_test_id("node-panel-title")).to_have_text("JSONata transform")
    page.get_by_test_id("field-expression").fill('{"doubled": body.amount * 2, "order": body.order}')
    page.get_by_test_id("node-name").fill("Double it")
    page.get_by_test_id("apply-node").click()
    expect(page.get_by_test_id("node-problem-jsonata_1")).to_have_count(0)
    expect(page.locator(".react-flow__node[data-id='jsonata_1']")).to_contain_text("Double it")
    page.locator(".react-flow__node[data-id='reply_1']").click()
    page.get_by_test_id("field-body").fill("$")
    page.get_by_test_id("apply-node").click()
    expect(page.get_by_test_id("problem-count")).to_have_count(0)

    page.get_by_test_id("save-flow").click()
    expect(page.get_by_test_id("save-message")).to_have_text("Saved as version 1.")
    expect(page.get_by_test_id("published-version")).to_have_text("published version 1")
    expect(page.get_by_test_id("unsaved")).to_have_count(0)

    page.locator(".react-flow__node[data-id='webhook_1']").click()
    page.get_by_test_id("create-production-url").click()
    url = page.get_by_test_id("production-url")
    expect(url).to_contain_text("/hook/")
    hook = hub.base_url + url.inner_text()[url.inner_text().index("/hook/") :]
    # The "URL is ready" toast sits over the panel's bottom right; a click aimed through it hovers it, and a
    # hovered toast never goes: wait for it with the mouse elsewhere.
    page.mouse.move(5, 5)
    expect(page.get_by_text("The production URL is ready.")).to_have_count(0, timeout=15_000)
    page.get_by_test_id("setting-mode").click()
    page.get_by_role("option", name="sync", exact=True).click()
    page.get_by_test_id("save-webhook-settings").click()
    expect(page.get_by_test_id("webhook-error")).to_have_count(0)
    screenshot(page, "designer-newcomer-flow")

    page.get_by_test_id(
        "listen-test"
    ).click()  # the test URL: its next request runs the saved draft, shown here
    expect(page.get_by_test_id("listening")).to_be_visible()
    test_url = page.get_by_test_id("test-url").inner_text()
    test_hook = hub.base_url + test_url[test_url.index("/hook/") :]
    assert httpx.post(test_hook, json={"amount": 5, "order": "T-1"}, timeout=30).status_code == 200
    expect(page.get_by_test_id("node-run-jsonata_1")).to_contain_text("✓ ran once", timeout=20_000)
    expect(page.get_by_test_id("node-test-output")).to_contain_text("T-1")  # the webhook node's data
    expect(page.get_by_test_id("test-status")).to_have_text("test run: succeeded")

    page.get_by_test_id("activate").click()
    expect(page.get_by_test_id("flow-status")).to_have_text("active", timeout=30_000)
    response = httpx.post(hook, json={"amount": 21, "order": "A-7"}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json() == {"doubled": 42, "order": "A-7"}

    page.goto(f"{hub.base_url}/flows")
    row = page.get_by_test_id("flow-row").filter(has_text="Double the amount")
    expect(row).to_contain_text("webhook")
    expect(row).to_contain_text("succeeded", timeout=20_000)  # the run is recorded and listed
    screenshot(page, "designer-flows-list")
    assert console.problems == []


def test_a_missing_required_field_shows_on_its_node_and_blocks_activation(page, hub, acme) -> None:
    login(page, hub)
    _new_flow(page, hub, "Half done")
    _drop(page, "manual", "start", 80, 200)
    _drop(page, "http", "request", 330, 200)
    _connect(page, "manual_1", "http_1")
    problem = page.get_by_test_id("node-problem-http_1")
    expect(problem).to_contain_text("'url' is empty")
    expect(page.locator(".react-flow__node[data-id='http_1'] [data-problems='1']")).to_be_visible()
    expect(page.get_by_test_id("problems")).to_contain_text("http_1")

    page.get_by_test_id("save-flow").click()
    expect(page.get_by_test_id("save-message")).to_contain_text("no version was published")
    page.get_by_test_id("activate").click()
    expect(page.get_by_test_id("flow-error")).to_contain_text("Not activated: the flow has 1 problem")
    expect(page.get_by_test_id("flow-status")).to_have_text("inactive")

    page.locator(".react-flow__node[data-id='http_1']").click()
    page.get_by_test_id("apply-node").click()  # the panel checks too, beside the field
    expect(page.get_by_test_id("field-error").first).to_contain_text("URL is required")
    page.get_by_test_id("run-settings").click()
    page.get_by_test_id("setting-max_attempts").fill("0")
    page.get_by_test_id("field-url").fill("https://example.com/orders")
    page.get_by_test_id("apply-node").click()
    expect(page.get_by_test_id("field-error")).to_contain_text("greater than or equal to 1")
    page.get_by_test_id("setting-max_attempts").fill("5")
    page.get_by_test_id("apply-node").click()
    expect(page.get_by_test_id("node-problem-http_1")).to_have_count(0)
    screenshot(page, "designer-validation")


def test_the_second_editor_to_save_gets_a_conflict_and_can_keep_a_copy(browser, hub, db, acme) -> None:
    graph = {"nodes": [{"id": "start", "component": "manual", "function": "start", "position": {"x": 0, "y": 0}}],
             "edges": []}  # fmt: skip
    flow = flows.create_flow(db, acme, "Shared work", graph)
    pages = []
    for email in ("owner@example.com", EDITOR_EMAIL):
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(20_000)
        _login_as(page, hub, email)
        page.goto(f"{hub.base_url}/flows/{flow.id}")
        expect(page.get_by_test_id("flow-name")).to_have_text("Shared work")
        pages.append(page)
    first, second = pages
    _drop(first, "log", "log", 400, 200)
    first.get_by_test_id("save-flow").click()
    expect(first.get_by_test_id("save-message")).to_contain_text("Saved as version 1")

    _drop(second, "delay", "delay", 400, 300)
    second.get_by_test_id("save-flow").click()
    expect(second.get_by_test_id("conflict-message")).to_contain_text("changed by someone else")
    screenshot(second, "designer-conflict")
    second.get_by_test_id("conflict-copy").click()
    second.wait_for_url(lambda url: str(flow.id) not in url and "/flows/" in url)
    expect(second.get_by_test_id("flow-name")).to_have_text("Shared work (my copy)")
    expect(second.locator(".react-flow__node[data-id='delay_1']")).to_be_visible()

    first.reload()
    expect(first.locator(".react-flow__node[data-id='log_1']")).to_be_visible()
    expect(first.locator(".react-flow__node[data-id='delay_1']")).to_have_count(0)  # never silently merged
    for page in pages:
        page.context.close()


def _big_graph(count: int) -> dict:
    nodes = [{"id": "start", "component": "manual", "function": "start", "position": {"x": 0, "y": 0}}]
    edges = []
    for i in range(1, count):
        nodes.append({"id": f"log_{i}", "component": "log", "function": "log",
                      "position": {"x": 280.0 * (i % 20), "y": 120.0 * (i // 20)}})  # fmt: skip
        edges.append({"source": nodes[(i - 1) // 2]["id"], "target": f"log_{i}"})  # a binary tree
    return {"nodes": nodes, "edges": edges}


def test_a_200_node_flow_loads_and_a_drag_sends_only_a_few_events(page, hub, db, acme) -> None:
    flow = flows.create_flow(db, acme, "Two hundred steps", _big_graph(200))
    sent: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(str(payload))))
    login(page, hub)
    started = time.monotonic()
    page.goto(f"{hub.base_url}/flows/{flow.id}")
    expect(page.get_by_test_id("flow-name")).to_have_text("Two hundred steps")
    expect(page.locator(".react-flow__node").first).to_be_visible()
    loaded_s = time.monotonic() - started
    expect(page.get_by_test_id("problem-count")).to_have_count(0)
    page.get_by_test_id("canvas-fit").click()
    page.wait_for_timeout(500)
    node = page.locator(".react-flow__node[data-id='start']")
    box = node.bounding_box()
    assert box is not None
    before = len(sent)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    for step in range(1, 31):  # thirty mouse moves: one gesture
        page.mouse.move(box["x"] + box["width"] / 2 + step * 4, box["y"] + box["height"] / 2 + step * 3)
    page.mouse.up()
    page.wait_for_timeout(1000)
    events = [frame for frame in sent[before:] if "nodes_moved" in frame or "event" in frame]
    assert 1 <= len(events) <= 3, events
    assert any("nodes_moved" in frame for frame in events)
    screenshot(page, "designer-200-nodes")
    print(f"200-node flow visible after {loaded_s:.1f} s; a 30-move drag sent {len(events)} event(s)")


def test_a_test_run_shows_each_nodes_data_on_the_canvas_without_activating(page, hub, db, acme) -> None:
    graph = {
        "nodes": [
            {"id": "start", "component": "manual", "function": "start", "position": {"x": 0, "y": 0}},
            {"id": "shape", "component": "jsonata", "function": "transform", "position": {"x": 280, "y": 0},
             "fields": {"expression": "{'squared': n * n}"}},
            {"id": "check", "component": "jsonata", "function": "transform", "position": {"x": 560, "y": 0},
             "fields": {"expression": "$error('too big: ' & $string(squared))"},
             "settings": {"retry": {"max_attempts": 1}}},
        ],
        "edges": [{"source": "start", "target": "shape"}, {"source": "shape", "target": "check"}],
    }  # fmt: skip
    flow = flows.create_flow(db, acme, "Try it out", graph)
    login(page, hub)
    page.goto(f"{hub.base_url}/flows/{flow.id}")
    expect(page.get_by_test_id("flow-name")).to_have_text("Try it out")
    page.get_by_test_id("test-run").click()
    page.get_by_test_id("test-input").fill("not json")
    page.get_by_test_id("run-test").click()
    expect(page.get_by_test_id("test-input-error")).to_contain_text("not JSON")
    page.get_by_test_id("test-input").fill('{"n": 12}')
    page.get_by_test_id("run-test").click()
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("test-status")).to_have_text("test run: failed", timeout=30_000)
    expect(page.get_by_test_id("node-run-shape")).to_contain_text("✓ ran once")
    expect(page.get_by_test_id("node-run-check")).to_contain_text("too big: 144")
    page.locator(".react-flow__node[data-id='shape']").click()
    expect(page.get_by_test_id("node-test-output")).to_contain_text("144")
    expect(page.get_by_test_id("node-test-input")).to_contain_text("12")
    expression = page.get_by_test_id("field-expression")
    expression.fill("{'tripled': n * 3}")  # previewed on this step's input in the test run, as one types
    expect(page.get_by_test_id("expression-preview")).to_contain_text('"tripled": 36')
    expression.fill("{'tripled': n * }")
    expect(page.get_by_test_id("expression-preview")).to_contain_text("does not parse")
    page.locator(".react-flow__node[data-id='check']").click()
    expect(page.get_by_test_id("node-test-error")).to_contain_text("too big: 144")
    expect(page.get_by_test_id("flow-status")).to_have_text("inactive")
    screenshot(page, "designer-test-run")


def test_copy_paste_undo_redo_delete_layout_and_versions(page, hub, db, acme) -> None:
    graph = {
        "nodes": [
            {"id": "start", "component": "manual", "function": "start", "position": {"x": 0, "y": 0}},
            {"id": "log_1", "component": "log", "function": "log", "position": {"x": 0, "y": 200}},
        ],
        "edges": [{"source": "start", "target": "log_1"}],
    }
    flow = flows.create_flow(db, acme, "Gestures", graph)
    login(page, hub)
    page.goto(f"{hub.base_url}/flows/{flow.id}")
    nodes = page.locator(".react-flow__node")
    expect(nodes).to_have_count(2)

    page.locator(".react-flow__node[data-id='log_1']").click()
    page.keyboard.press("Control+c")
    page.keyboard.press("Control+v")
    expect(nodes).to_have_count(3)
    expect(page.locator(".react-flow__node[data-id='log_2']")).to_be_visible()
    page.get_by_test_id("canvas-undo").click()
    expect(nodes).to_have_count(2)
    page.get_by_test_id("canvas-redo").click()
    expect(nodes).to_have_count(3)
    page.locator(".react-flow__node[data-id='log_2']").click()
    page.keyboard.press("Delete")
    expect(nodes).to_have_count(2)
    expect(page.get_by_test_id("unsaved")).to_be_visible()
    assert page.evaluate(LEAVING) is True  # closing the tab now would ask first

    _drop(page, "log", "log", 400, 400)  # a dropped step is the selected one: Delete removes it, nothing else
    expect(nodes).to_have_count(3)
    expect(page.get_by_test_id("node-panel-title")).to_have_text("Log")
    page.keyboard.press("Delete")
    expect(nodes).to_have_count(2)
    expect(page.locator(".react-flow__node[data-id='log_1']")).to_be_visible()

    page.get_by_test_id("palette-search").fill("json")  # the palette filters as one types
    expect(page.get_by_test_id("palette").locator("[draggable]")).to_have_count(1)
    page.get_by_test_id("palette-search").fill("")

    page.locator(".react-flow__edge").first.click(force=True)  # a connection's condition
    page.get_by_test_id("edge-condition").fill("amount > 100")
    page.get_by_test_id("apply-edge").click()
    expect(page.locator(".react-flow__edge-text")).to_have_text("amount > 100")
    page.get_by_test_id("edge-condition").fill("amount >")
    page.get_by_test_id("apply-edge").click()
    expect(page.get_by_test_id("problems")).to_contain_text("does not parse")
    page.get_by_test_id("edge-condition").fill("")
    page.get_by_test_id("apply-edge").click()
    expect(page.locator(".react-flow__edge-text")).to_have_count(0)

    page.get_by_test_id("canvas-layout").click()
    page.get_by_test_id("save-flow").click()
    expect(page.get_by_test_id("save-message")).to_have_text("Saved as version 1.")
    assert page.evaluate(LEAVING) is False
    saved = designer_draft(db, acme, flow.id)
    assert {n["id"]: n["position"] for n in saved["nodes"]} == {
        "start": {"x": 0.0, "y": 0.0},
        "log_1": {"x": 280.0, "y": 0.0},  # the trigger's column, then the next one
    }

    page.locator(".react-flow__node[data-id='log_1']").click()
    page.get_by_test_id("canvas-delete").click()
    page.get_by_test_id("save-flow").click()
    expect(page.get_by_test_id("save-message")).to_have_text("Saved as version 2.")
    page.get_by_test_id("versions").click()
    rows = page.get_by_test_id("versions-table").locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Olivia Owner")
    rows.nth(1).get_by_test_id("view-version").click()
    expect(page.get_by_test_id("viewing-version")).to_contain_text("Version 1")
    expect(nodes).to_have_count(2)
    expect(page.get_by_test_id("save-flow")).to_be_disabled()
    page.get_by_test_id("restore-version").click()
    expect(page.get_by_test_id("viewing-version")).to_have_count(0)
    page.get_by_test_id("save-flow").click()
    expect(page.get_by_test_id("save-message")).to_have_text("Saved as version 3.")
    assert [n["id"] for n in designer_draft(db, acme, flow.id)["nodes"]] == ["start", "log_1"]
    screenshot(page, "designer-versions")


def test_a_viewer_sees_the_flow_but_cannot_change_it(page, hub, db) -> None:
    beta = accounts.find_tenant_by_slug(db, "beta-corp")  # the owner of Acme is a viewer here
    flow = flows.create_flow(db, beta.id, "Read only", {"nodes": [
        {"id": "start", "component": "manual", "function": "start", "position": {"x": 0, "y": 0}}], "edges": []})  # fmt: skip
    login(page, hub)
    page.get_by_test_id("tenant-switcher").click()
    page.get_by_role("option", name="Beta Corp").click()
    page.goto(f"{hub.base_url}/flows/{flow.id}")
    expect(page.get_by_test_id("flow-name")).to_have_text("Read only")
    expect(page.get_by_test_id("save-flow")).to_be_disabled()
    expect(page.get_by_test_id("activate")).to_be_disabled()
    expect(page.get_by_test_id("canvas-delete")).to_be_disabled()
    expect(page.get_by_test_id("palette-log-log")).to_have_attribute("draggable", "false")
    page.locator(".react-flow__node[data-id='start']").click()
    expect(page.get_by_test_id("apply-node")).to_be_disabled()
    page.keyboard.press("Delete")
    expect(page.locator(".react-flow__node")).to_have_count(1)


def designer_draft(db: Database, tenant_id: uuid.UUID, flow_id: uuid.UUID) -> dict:
    return read_draft(db, tenant_id, flow_id)[1]


@pytest.mark.skipif(shutil.which("node") is None or shutil.which("bwrap") is None,
                    reason="needs Node.js and bubblewrap (the component's sandboxed runner)")  # fmt: skip
def test_a_dynamic_select_lists_the_components_choices_with_the_chosen_credential(
    page, hub, db, acme
) -> None:
    catalog.import_folder(
        db, FIXTURES / "sailor-demo", tenant_id=acme, components_dir=hub.data_dir / "components"
    )
    vault = Vault(load_key_ring(load_settings(data_dir=hub.data_dir)))
    components = TenantCatalog(db, acme)
    owner = accounts.find_user_by_email(db, "owner@example.com")
    credential_service.create_credential(db, vault, components, acme, owner.id, name="Demo key", kind="fields",
                                         component_name="sailor-demo", values={"apiKey": "good-key"})  # fmt: skip
    graph = {"nodes": [
        {"id": "start", "component": "manual", "function": "start", "position": {"x": 0, "y": 0}},
        {"id": "greet", "component": "sailor-demo", "function": "greet", "position": {"x": 280, "y": 0}},
    ], "edges": [{"source": "start", "target": "greet"}]}  # fmt: skip
    flow = flows.create_flow(db, acme, "Greetings", graph)
    login(page, hub)
    page.goto(f"{hub.base_url}/flows/{flow.id}")
    page.locator(".react-flow__node[data-id='greet']").click()
    page.get_by_test_id("load-choices").click()
    expect(page.get_by_test_id("field-error")).to_contain_text("Choose a credential first")
    page.get_by_test_id("node-credential").select_option(label="Demo key (Component fields)")
    page.get_by_test_id("load-choices").click()
    expect(page.get_by_test_id("field-error")).to_have_count(0, timeout=30_000)
    page.get_by_test_id("field-style").select_option("formal")
    page.get_by_test_id("apply-node").click()
    expect(page.get_by_test_id("node-problem-greet")).to_have_count(0)
    page.get_by_test_id("save-flow").click()
    expect(page.get_by_test_id("save-message")).to_have_text("Saved as version 1.")
    expect(page.get_by_test_id("field-style").locator("option:checked")).to_have_text("Formal (en)")
    fields = next(n for n in designer_draft(db, acme, flow.id)["nodes"] if n["id"] == "greet")["fields"]
    assert fields == {"style": "formal"}
    screenshot(page, "designer-dynamic-select")


def test_a_newer_component_version_is_offered_with_what_changed_and_upgraded_on_request(
    page, hub, db, acme, tmp_path
) -> None:
    components_dir = hub.data_dir / "components"
    first = catalog.import_folder(db, FIXTURES / "probe", tenant_id=acme, components_dir=components_dir)
    graph = {"nodes": [
        {"id": "start", "component": "manual", "function": "start", "position": {"x": 0, "y": 0}},
        {"id": "echo", "component": "probe", "function": "echo", "position": {"x": 280, "y": 0}},
    ], "edges": [{"source": "start", "target": "echo"}], "pins": {"probe": first.version}}  # fmt: skip
    flow = flows.create_flow(db, acme, "Pinned probe", graph)
    newer = tmp_path / "probe"
    shutil.copytree(FIXTURES / "probe", newer)
    descriptor = json.loads((newer / "component.json").read_text())
    descriptor["version"] = "9.0.0"
    descriptor["actions"]["echo"]["fields"]["target"] = {"label": "Target", "viewClass": "TextFieldView",
                                                         "required": True}  # fmt: skip
    (newer / "component.json").write_text(json.dumps(descriptor))
    catalog.import_folder(db, newer, tenant_id=acme, components_dir=components_dir)

    login(page, hub)
    page.goto(f"{hub.base_url}/flows/{flow.id}")
    offer = page.get_by_test_id("component-upgrades")
    expect(offer).to_contain_text(f"Probe {first.version} → 9.0.0")
    expect(page.get_by_test_id("upgrade-changes")).to_contain_text("Echo: new required field 'Target'")
    expect(page.get_by_test_id("problem-count")).to_have_count(0)  # the pinned version still rules
    screenshot(page, "designer-upgrade-offer")
    page.get_by_test_id("upgrade-component").click()
    expect(offer).to_have_count(0)
    expect(page.get_by_test_id("node-problem-echo")).to_contain_text("'target' is empty")
    page.locator(".react-flow__node[data-id='echo']").click()
    expect(page.get_by_test_id("field-target")).to_be_visible()
    page.get_by_test_id("canvas-undo").click()  # an upgrade is an edit like any other
    expect(page.get_by_test_id("node-problem-echo")).to_have_count(0)


def test_applying_a_step_keeps_and_changes_its_multiple_choices(page, hub, db, acme) -> None:
    first = catalog.import_folder(
        db, FIXTURES / "probe", tenant_id=acme, components_dir=hub.data_dir / "components"
    )
    graph = {"nodes": [
        {"id": "start", "component": "manual", "function": "start", "position": {"x": 0, "y": 0}},
        {"id": "echo", "component": "probe", "function": "echo", "position": {"x": 280, "y": 0},
         "fields": {"tags": ["a", "c"]}},
    ], "edges": [{"source": "start", "target": "echo"}], "pins": {"probe": first.version}}  # fmt: skip
    flow = flows.create_flow(db, acme, "Tagged", graph)
    login(page, hub)
    page.goto(f"{hub.base_url}/flows/{flow.id}")
    page.locator(".react-flow__node[data-id='echo']").click()
    page.get_by_test_id("node-name").fill("Echo it")
    page.get_by_test_id("apply-node").click()  # a rename must not lose the ticked choices
    expect(page.locator(".react-flow__node[data-id='echo']")).to_contain_text("Echo it")
    page.get_by_test_id("choice-tags-b").click()
    page.get_by_test_id("apply-node").click()
    expect(page.get_by_test_id("unsaved")).to_be_visible()
    page.get_by_test_id("save-flow").click()
    expect(page.get_by_test_id("save-message")).to_contain_text("Saved as version")
    echo = next(n for n in designer_draft(db, acme, flow.id)["nodes"] if n["id"] == "echo")
    assert (echo["name"], echo["fields"]["tags"]) == ("Echo it", ["a", "b", "c"])
