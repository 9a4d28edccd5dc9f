"""A small harness around a real Redis: publish a flow, start runs, drive workers, read the events."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from runtime.bus.keys import TenantKeys
from runtime.bus.streams import StreamsBus
from runtime.components.builtin import builtin_registry
from runtime.components.registry import StaticRegistry, spec_from_descriptor
from runtime.steps.errors import PermanentStepError, StepError
from runtime.worker import Worker, WorkerConfig


def flaky_component(redis) -> Any:
    """`flaky.call` fails `fail_times` times per message, then passes the message on; `flaky.fragile` (fusible)
    fails once per message; `flaky.broken` fails for good until `test:fixed` is set."""

    def call(message, fields, context):
        count = redis.incr(f"test:flaky:{context.message_id}")
        if count <= int(fields.get("fail_times", 2)):
            raise StepError(f"flaky failure {count}")
        return message

    def fragile(message, fields, context):
        if redis.incr(f"test:fragile:{context.message_id}") == 1:
            raise StepError("fragile failure")
        return message

    def broken(message, fields, context):
        if redis.get("test:fixed"):
            return {"fixed": True, **(message.data or {})}
        raise PermanentStepError("the service is broken")

    return spec_from_descriptor(
        "flaky",
        {
            "actions": {
                "call": {"fields": {}},
                "broken": {"fields": {}},
                # Fusible, so that a failure of a step run in its predecessor's commit can be tested.
                "fragile": {"fields": {}, "x-hub": {"fusible": True}},
            }
        },
        {"call": call, "broken": broken, "fragile": fragile},
    )


def queued(client: Any, tenant: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Every step message in the tenant's queues (all flows), oldest first."""
    entries = [e for q in client.smembers(TenantKeys(tenant).queues) for e in client.xrange(q)]
    return sorted(entries, key=lambda e: tuple(int(x) for x in e[0].split(b"-")))


@dataclass
class Harness:
    bus: StreamsBus
    registry: StaticRegistry
    tenant: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}")
    workers: list[Worker] = field(default_factory=list)
    worker_defaults: dict[str, Any] = field(default_factory=dict)

    def worker(self, name: str = "w1", **config: Any) -> Worker:
        settings = {"housekeeping_interval_s": 0.02, "block_ms": 20, **self.worker_defaults, **config}
        worker = Worker(self.bus, self.registry, WorkerConfig(name=name, **settings))
        self.workers.append(worker)
        return worker

    def publish(self, nodes: list[dict], edges: list[dict], flow_id: str = "flow1") -> str:
        version = uuid.uuid4().hex
        self.bus.publish_version(self.tenant, flow_id, version, {"nodes": nodes, "edges": edges})
        return version

    def start(self, version: str, data: Any, flow_id: str = "flow1", step: str = "start", **kw: Any) -> str:
        return self.bus.start_run(self.tenant, flow_id, version, step, {"data": data}, **kw)

    def events(self) -> list[dict]:
        entries = self.bus.redis.xrange(TenantKeys(self.tenant).events)
        return [event for _, fields in entries for event in orjson.loads(fields[b"e"])]

    def finished(self) -> dict[str, dict]:
        return {e["run"]: e for e in self.events() if e["t"] == "run.finished"}

    def drain(self, until: Callable[[], bool], timeout: float = 20.0) -> None:
        if not self.workers:
            self.worker()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for worker in self.workers:
                worker.run_once()
            if until():
                return
        raise AssertionError("the runs did not finish in time")

    def run_to_end(self, version: str, data: Any, **kw: Any) -> dict:
        run = self.start(version, data, **kw)
        self.drain(lambda: run in self.finished())
        return self.finished()[run]

    def step_events(self, run: str, step: str | None = None) -> list[dict]:
        return [
            e
            for e in self.events()
            if e["t"].startswith("step.") and e["run"] == run and (step is None or e["step"] == step)
        ]


@pytest.fixture
def harness(redis) -> Harness:
    registry = builtin_registry().with_components(flaky_component(redis))
    return Harness(StreamsBus(redis), registry)


def node(node_id: str, component: str, function: str, **extra: Any) -> dict:
    return {"id": node_id, "component": component, "function": function, **extra}


START = node("start", "manual", "start")

# trigger -> JSONata transform -> log: the flow most tests start from.
LINEAR = (
    [
        START,
        node("shape", "jsonata", "transform", fields={"expression": "{'total': price * qty}"}),
        node("log", "log", "log"),
    ],
    [{"source": "start", "target": "shape"}, {"source": "shape", "target": "log"}],
)
