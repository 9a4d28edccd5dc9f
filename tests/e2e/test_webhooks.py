"""Webhooks in a real browser against `hub up`: one click for the URL, activation, rotation, the test URL and
its captured request, protection settings; requests go to the hub's own port."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis
import sqlalchemy as sa
from playwright.sync_api import expect

from app.services import accounts, flows
from app.storage.db import Database
from app.storage.models import Run
from app.storage.scoping import tenant_session
from runtime.bus.streams import StreamsBus
from runtime.components.builtin import builtin_registry
from runtime.router.protection import signature
from tests.e2e.conftest import ConsoleWatcher, login, screenshot

pytestmark = pytest.mark.browser

GRAPH = {
    "nodes": [
        {"id": "hook", "component": "webhook", "function": "receive"},
        {"id": "log", "component": "log", "function": "log"},
    ],
    "edges": [{"source": "hook", "target": "log"}],
}


@pytest.fixture(scope="module")
def flow(hub) -> Iterator[tuple[Database, uuid.UUID, uuid.UUID]]:
    db = Database.connect(f"sqlite:///{hub.data_dir / 'hub.db'}")
    client = redis.Redis.from_url((hub.data_dir / "redis" / "url").read_text())
    acme = accounts.find_tenant_by_slug(db, "acme")
    created = flows.create_flow(db, acme.id, "Orders from the shop", GRAPH)
    flows.publish_flow(db, StreamsBus(client), builtin_registry(), acme.id, created.id)
    yield db, acme.id, created.id
    client.close()
    db.dispose()


def _path(url: str) -> str:
    return url[url.index("/hook/") :]


def test_create_activate_call_rotate_and_listen(page, hub, flow) -> None:
    db, tenant_id, _ = flow
    console = ConsoleWatcher(page)
    login(page, hub)
    page.goto(f"{hub.base_url}/flows")
    page.get_by_test_id("flow-link").filter(has_text="Orders from the shop").click()
    expect(page.get_by_test_id("flow-name")).to_have_text("Orders from the shop")
    expect(page.get_by_test_id("flow-status")).to_have_text("inactive")

    page.get_by_test_id("create-production-url").click()
    url = page.get_by_test_id("production-url")
    expect(url).to_contain_text("/hook/")
    hook = hub.base_url + _path(url.inner_text())
    assert len(hook.rsplit("/", 1)[1]) >= 43
    assert httpx.post(hook, json={"n": 1}).status_code == 410  # inactive

    page.get_by_test_id("activate").click()
    expect(page.get_by_test_id("flow-status")).to_have_text("active")
    response = httpx.post(hook, json={"n": 2})
    assert response.status_code == 202, response.text
    run_id = uuid.UUID(response.json()["run_id"])
    deadline = time.monotonic() + 30
    status = None
    while time.monotonic() < deadline and status != "succeeded":
        with tenant_session(db.sessions, tenant_id) as session:
            status = session.scalar(sa.select(Run.status).where(Run.id == run_id))
        time.sleep(0.2)
    assert status == "succeeded"  # the hub's worker ran it and its recorder stored it

    page.get_by_test_id("rotate-url").click()
    page.get_by_test_id("rotate-url-confirm").click()
    expect(url).not_to_contain_text(hook.rsplit("/", 1)[1])
    new_hook = hub.base_url + _path(url.inner_text())
    assert new_hook != hook
    assert httpx.post(hook, json={}).status_code == 404
    assert httpx.post(new_hook, json={}).status_code == 202

    page.get_by_test_id("listen-test").click()
    expect(page.get_by_test_id("listening")).to_be_visible()
    test_hook = hub.base_url + _path(page.get_by_test_id("test-url").inner_text())
    assert httpx.post(test_hook, json={"order": "T-1"}).status_code == 202
    expect(page.get_by_test_id("captured")).to_contain_text("T-1", timeout=15_000)
    expect(page.get_by_test_id("listening")).to_have_count(0)
    screenshot(page, "webhook-panel")
    assert console.problems == []


def test_protection_settings_and_their_errors(page, hub, flow) -> None:
    login(page, hub)
    _, _, flow_id = flow
    page.goto(f"{hub.base_url}/flows/{flow_id}")
    expect(page.get_by_test_id("flow-name")).to_be_visible()
    if page.get_by_test_id("create-production-url").count():
        page.get_by_test_id("create-production-url").click()
    if page.get_by_test_id("activate").count():
        page.get_by_test_id("activate").click()
    hook = hub.base_url + _path(page.get_by_test_id("production-url").inner_text())

    page.get_by_test_id("setting-timeout_s").fill("12")
    page.get_by_test_id("setting-auth").click()
    page.get_by_role("option", name="hmac").click()
    expect(page.get_by_test_id("setting-timeout_s")).to_have_value("12")  # choosing keeps what was typed
    page.get_by_test_id("save-webhook-settings").click()
    expect(page.get_by_test_id("webhook-error")).to_contain_text("name the header")

    page.get_by_test_id("setting-header").fill("X-Signature")
    page.get_by_test_id("save-webhook-settings").click()
    expect(page.get_by_test_id("webhook-error")).to_contain_text("enter the secret")

    page.get_by_test_id("secret-secret").fill("shop-secret")
    page.get_by_test_id("save-webhook-settings").click()
    expect(page.get_by_test_id("webhook-error")).to_have_count(0)
    expect(page.get_by_test_id("secret-secret")).to_have_attribute("placeholder", "stored — type to replace")

    body = b'{"paid": 1}'
    plain = {"content-type": "application/json"}
    assert httpx.post(hook, content=body, headers=plain).status_code == 401
    signed = {**plain, "X-Signature": signature("shop-secret", "sha256", body)}
    assert httpx.post(hook, content=body, headers=signed).status_code == 202


def test_an_unknown_flow_says_so(page, hub) -> None:
    login(page, hub)
    page.goto(f"{hub.base_url}/flows/{uuid.uuid4()}")
    expect(page.get_by_test_id("flow-missing")).to_contain_text("does not exist")


def test_a_polling_flow_shows_its_schedule_and_a_worker_schedules_it(page, hub) -> None:
    from rq_scheduler import Scheduler

    db = Database.connect(f"sqlite:///{hub.data_dir / 'hub.db'}")
    client = redis.Redis.from_url((hub.data_dir / "redis" / "url").read_text())
    try:
        acme = accounts.find_tenant_by_slug(db, "acme")
        graph = {"nodes": [{"id": "tick", "component": "schedule", "function": "tick", "fields": {"cron": "*/15 * * * *"}},
                           {"id": "log", "component": "log", "function": "log"}],
                 "edges": [{"source": "tick", "target": "log"}]}  # fmt: skip
        created = flows.create_flow(db, acme.id, "Every quarter hour", graph)
        flows.publish_flow(db, StreamsBus(client), builtin_registry(), acme.id, created.id)
        login(page, hub)
        page.goto(f"{hub.base_url}/flows/{created.id}")
        expect(page.get_by_test_id("schedule-words")).to_have_text("Every 15 minutes")
        expect(page.get_by_test_id("next-ticks").locator(".rt-Badge")).to_have_count(5)
        page.get_by_test_id("activate").click()
        expect(page.get_by_test_id("flow-status")).to_have_text("active", timeout=20_000)
        assert client.zscore(Scheduler.scheduled_jobs_key, f"hub-poll-{created.id}") is not None
        page.get_by_test_id("deactivate").click()
        expect(page.get_by_test_id("flow-status")).to_have_text("inactive", timeout=20_000)
        assert client.zscore(Scheduler.scheduled_jobs_key, f"hub-poll-{created.id}") is None
    finally:
        client.close()
        db.dispose()
