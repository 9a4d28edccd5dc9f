"""The HTTP polling trigger: each item once, remembered in the node's snapshot across runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runtime.components.builtin.http_poll import poll
from runtime.net.egress import EgressPolicy
from runtime.steps.context import StepContext
from runtime.steps.errors import PermanentStepError
from runtime.steps.message import Message
from tests.http_server import LocalHTTPServer
from tests.runtime.conftest import node

LOCAL = EgressPolicy.parse("127.0.0.1")


@pytest.fixture
def server() -> Iterator[LocalHTTPServer]:
    with LocalHTTPServer() as srv:
        yield srv


def test_new_items_start_runs_once(harness, server) -> None:
    harness.worker_defaults["egress"] = LOCAL
    server.items = [{"id": 1}, {"id": 2}]
    fields = {"url": f"{server.url}/items", "items": "data.items", "id": "id"}
    version = harness.publish(
        [node("poll", "http_poll", "poll", fields=fields), node("out", "log", "log")],
        [{"source": "poll", "target": "out"}],
    )
    first = harness.run_to_end(version, {}, step="poll")["run"]
    assert sorted(e["in"]["id"] for e in harness.step_events(first, "out")) == [1, 2]
    server.items.append({"id": 3})
    second = harness.run_to_end(version, {}, step="poll")["run"]
    assert [e["in"]["id"] for e in harness.step_events(second, "out")] == [3]
    third = harness.run_to_end(version, {}, step="poll")
    assert third["status"] == "succeeded" and harness.step_events(third["run"], "out") == []


def test_skip_existing_and_a_bad_id(server) -> None:
    server.items = [{"id": 1}, {"name": "no id"}]
    context = StepContext("t", "f", "r", "s", "m", 1, egress=LOCAL)
    fields = {
        "url": f"{server.url}/items",
        "items": "data.items[$exists(id)]",
        "id": "id",
        "skip_existing": True,
    }
    assert poll(Message(), fields, context) == []
    assert context.snapshot["seen"] == ["1"]
    with pytest.raises(PermanentStepError, match="the id expression gave nothing"):
        poll(Message(), {**fields, "items": "data.items"}, context)
