"""The run history in a real browser against `hub up`: a failed run's timeline, data, logs and error; replay from
the failed step after fixing the flow; a running run that updates live; dead letters; the Flows page's count."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import redis
from playwright.sync_api import expect

from app.services import accounts, flows
from app.services import runs as run_service
from app.storage.db import Database
from app.storage.models import Run
from app.storage.scoping import tenant_session
from runtime.bus.streams import StreamsBus
from runtime.components.builtin import builtin_registry
from tests.e2e.conftest import ConsoleWatcher, login, screenshot

pytestmark = pytest.mark.browser

REFUSING = "$error('order ' & $string(id) & ' refused by the ERP')"


def _graph(expression: str) -> dict:
    return {
        "nodes": [
            {"id": "start", "component": "manual", "function": "start"},
            {"id": "note", "component": "log", "function": "log",
             "fields": {"message": "'order ' & $string(id) & ' received'", "level": "info"}},
            {"id": "shape", "component": "jsonata", "function": "transform", "fields": {"expression": expression},
             "settings": {"retry": {"max_attempts": 1}}},
            {"id": "done", "component": "log", "function": "log", "fields": {"level": "info"}},
        ],
        "edges": [{"source": "start", "target": "note"}, {"source": "note", "target": "shape"},
                  {"source": "shape", "target": "done"}],
    }  # fmt: skip


@dataclass
class Hub:
    db: Database
    bus: StreamsBus
    tenant_id: uuid.UUID

    def flow(self, name: str, graph: dict) -> uuid.UUID:
        created = flows.create_flow(self.db, self.tenant_id, name, graph)
        flows.publish_flow(self.db, self.bus, builtin_registry(), self.tenant_id, created.id)
        return created.id

    def start(self, flow_id: uuid.UUID, data: dict) -> uuid.UUID:
        return run_service.start_manual_run(
            self.db, self.bus, builtin_registry(), self.tenant_id, flow_id, data
        )

    def status(self, run_id: uuid.UUID) -> str | None:
        with tenant_session(self.db.sessions, self.tenant_id) as session:
            run = session.get(Run, run_id)
            return run.status if run is not None else None

    def wait(self, run_id: uuid.UUID, statuses: tuple[str, ...], timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (status := self.status(run_id)) in statuses:
                return status
            time.sleep(0.1)
        raise AssertionError(f"run {run_id} is {self.status(run_id)}, not one of {statuses}")


@pytest.fixture(scope="module")
def hub_data(hub) -> Iterator[Hub]:
    db = Database.connect(f"sqlite:///{hub.data_dir / 'hub.db'}")
    client = redis.Redis.from_url((hub.data_dir / "redis" / "url").read_text())
    yield Hub(db, StreamsBus(client), accounts.find_tenant_by_slug(db, "acme").id)
    client.close()
    db.dispose()


def test_a_failed_run_replayed_from_its_failed_step_after_the_fix(page, hub, hub_data) -> None:
    flow_id = hub_data.flow("Orders to the ERP", _graph(REFUSING))
    run_id = hub_data.start(flow_id, {"id": 17, "items": [{"sku": "A-1", "qty": 2}]})
    assert hub_data.wait(run_id, ("failed", "succeeded")) == "failed"
    console = ConsoleWatcher(page)
    login(page, hub)
    # The dashboard (home) lists the flow among those failing most, linked to its failed runs.
    expect(page.get_by_test_id("failing-flow").filter(has_text="Orders to the ERP")).to_have_attribute(
        "href", f"/runs?flow={flow_id}&status=failed&period=24h"
    )
    expect(page.get_by_test_id("chart-runs").locator(".recharts-bar-rectangle").first).to_be_visible()
    screenshot(page, "dashboard")

    page.goto(f"{hub.base_url}/flows")
    expect(page.get_by_test_id("flow-failed").first).to_contain_text("1 failed")  # the Flows page's count
    page.get_by_test_id("flow-failed").first.click()
    page.wait_for_url("**/runs?flow=*")
    expect(page.get_by_test_id("run-row")).to_have_count(1)
    expect(page.get_by_test_id("run-row-status")).to_have_text("failed")
    expect(page.get_by_test_id("dead-row")).to_have_count(
        1
    )  # the flow's dead letter, with replay and discard
    page.get_by_test_id("run-link").click()

    page.wait_for_url(f"**/runs/{run_id}")
    expect(page.get_by_test_id("run-status")).to_have_text("failed")
    expect(page.get_by_test_id("run-error")).to_contain_text(
        "shape: the expression failed: order 17 refused by the ERP"
    )
    steps = page.get_by_test_id("step-row")
    expect(steps).to_have_count(3)  # start, note, shape: done never ran
    failed = steps.nth(2)
    expect(failed).to_contain_text("shape")
    expect(failed).to_contain_text("dead")
    failed.locator("summary").first.click()
    expect(failed.get_by_test_id("step-error")).to_contain_text("order 17 refused by the ERP")
    expect(failed.get_by_test_id("json-view").first).to_contain_text('"A-1"')  # its input, unfolded
    link = failed.get_by_test_id("step-designer-link")
    assert link.get_attribute("href") == f"/flows/{flow_id}?node=shape"

    expect(page.get_by_test_id("log-line")).to_have_count(1)
    expect(page.get_by_test_id("log-line")).to_contain_text("order 17 received")
    page.get_by_test_id("log-level").click()
    page.get_by_role("option", name="error and worse").click()
    expect(page.get_by_test_id("log-empty")).to_be_visible()
    page.get_by_test_id("log-level").click()
    page.get_by_role("option", name="All levels").click()
    page.get_by_test_id("log-search").fill("nothing like this")
    expect(page.get_by_test_id("log-empty")).to_be_visible()
    page.get_by_test_id("log-search").fill("RECEIVED")
    expect(page.get_by_test_id("log-line")).to_have_count(1)
    screenshot(page, "runs-failed-run")

    # The fix: the step no longer refuses. Replay runs the failed step and what follows, with that fix.
    with tenant_session(hub_data.db.sessions, hub_data.tenant_id) as session:
        lock = flows.get_flow(session, flow_id).lock_version
    flows.save_draft(hub_data.db, hub_data.tenant_id, flow_id, _graph("{'order': id, 'lines': $count(items)}"),
                     expected_lock_version=lock)  # fmt: skip
    flows.publish_flow(hub_data.db, hub_data.bus, builtin_registry(), hub_data.tenant_id, flow_id)
    page.get_by_test_id("replay-failed").click()
    page.wait_for_url(lambda url: "/runs/" in url and str(run_id) not in url)
    expect(page.get_by_test_id("run-status")).to_have_text("succeeded", timeout=30_000)
    expect(page.get_by_test_id("replay-of")).to_have_attribute("href", f"/runs/{run_id}")
    expect(page.get_by_test_id("step-row")).to_have_count(2)  # shape and done only
    replayed = page.get_by_test_id("step-row").first
    replayed.locator("summary").first.click()
    expect(replayed.get_by_test_id("json-view").nth(1)).to_contain_text("lines: 1")
    screenshot(page, "runs-replayed")

    page.get_by_test_id("replay-of").click()
    page.wait_for_url(f"**/runs/{run_id}")
    expect(page.get_by_test_id("replayed-as")).to_contain_text("succeeded")
    assert console.problems == []


def test_a_running_run_updates_live(page, hub, hub_data) -> None:
    graph = {
        "nodes": [
            {"id": "start", "component": "manual", "function": "start"},
            {"id": "wait", "component": "delay", "function": "delay", "fields": {"seconds": "4"}},
            {"id": "after", "component": "log", "function": "log", "fields": {"message": "'waited'", "level": "warning"}},
        ],
        "edges": [{"source": "start", "target": "wait"}, {"source": "wait", "target": "after"}],
    }  # fmt: skip
    flow_id = hub_data.flow("Slow flow", graph)
    console = ConsoleWatcher(page)
    login(page, hub)
    run_id = hub_data.start(flow_id, {"n": 1})
    hub_data.wait(run_id, ("running",))
    page.goto(f"{hub.base_url}/runs/{run_id}")
    expect(page.get_by_test_id("run-status")).to_have_text("running")
    expect(page.get_by_test_id("run-live")).to_be_visible()
    expect(page.get_by_test_id("log-empty")).to_be_visible()
    # Without a reload: the steps after the delay, the log line, and the end.
    expect(page.get_by_test_id("run-status")).to_have_text("succeeded", timeout=30_000)
    expect(page.get_by_test_id("step-row").filter(has_text="after")).to_have_count(1)
    expect(page.get_by_test_id("log-line")).to_contain_text("waited")
    expect(page.get_by_test_id("run-live")).to_have_count(0)
    assert console.problems == []


def test_runs_list_filters_and_pages(page, hub, hub_data) -> None:
    flow_id = hub_data.flow("Many runs", _graph("{'ok': id}"))
    ids = [hub_data.start(flow_id, {"id": i}) for i in range(55)]
    for run_id in ids:
        hub_data.wait(run_id, ("succeeded",))
    login(page, hub)
    page.goto(f"{hub.base_url}/runs?flow={flow_id}")
    expect(page.get_by_test_id("run-row")).to_have_count(50)
    page.get_by_test_id("runs-older").click()
    expect(page.get_by_test_id("run-row")).to_have_count(5)
    expect(page.get_by_test_id("runs-older")).to_be_disabled()
    page.get_by_test_id("runs-newer").click()
    expect(page.get_by_test_id("run-row")).to_have_count(50)
    page.get_by_test_id("runs-text").fill(ids[3].hex[:10])
    expect(page.get_by_test_id("run-row")).to_have_count(1)
    page.get_by_test_id("runs-text").fill("")
    page.get_by_test_id("runs-status").click()
    page.get_by_role("option", name="Failed (also partly)").click()
    expect(page.get_by_test_id("runs-empty")).to_be_visible()
    screenshot(page, "runs-list")

    page.goto(f"{hub.base_url}/runs/{uuid.uuid4()}")
    expect(page.get_by_test_id("run-page-error")).to_contain_text("does not exist")
    page.goto(f"{hub.base_url}/runs/not-a-run")
    expect(page.get_by_test_id("run-page-error")).to_contain_text("the address is not a run's id")


def test_health_readiness_and_metrics_on_the_hubs_port(hub, hub_data) -> None:
    flow_id = hub_data.flow("Counted", _graph("{'ok': id}"))
    hub_data.wait(hub_data.start(flow_id, {"id": 1}), ("succeeded",))
    assert httpx.get(f"{hub.base_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{hub.base_url}/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    httpx.post(f"{hub.base_url}/hook/no-such-token", json={})  # builds the router serving this port
    text = httpx.get(f"{hub.base_url}/metrics").text
    assert 'hub_step_executions_total{tenant="acme",component="jsonata",status="succeeded"}' in text
    assert "# TYPE hub_step_duration_seconds histogram" in text
    assert 'hub_webhook_requests_total{status="404"}' in text
    assert int(text.split("\nhub_workers ", 1)[1].split("\n", 1)[0]) >= 1
    assert 'hub_tenant_dead_letters{tenant="acme"}' in text


def test_an_owner_sets_the_tenants_retention(page, hub, hub_data) -> None:
    login(page, hub)
    page.goto(f"{hub.base_url}/settings")
    expect(page.get_by_test_id("retention-in-force")).to_have_text("30 days")  # the hub's default
    page.get_by_test_id("retention-days").fill("a week")
    page.get_by_test_id("save-retention").click()
    expect(page.get_by_test_id("retention-error")).to_contain_text("Days: 'a week' is not a whole number")
    page.get_by_test_id("retention-days").fill("7")
    page.get_by_test_id("retention-runs").fill("5000")
    page.get_by_test_id("save-retention").click()
    expect(page.get_by_test_id("retention-saved")).to_be_visible()
    expect(page.get_by_test_id("retention-in-force")).to_have_text("7 days and the newest 5,000 runs")
    page.get_by_test_id("retention-days").fill("")
    page.get_by_test_id("retention-runs").fill("")
    page.get_by_test_id("save-retention").click()
    expect(page.get_by_test_id("retention-in-force")).to_have_text("30 days")
