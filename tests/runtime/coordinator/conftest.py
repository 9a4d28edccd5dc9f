"""A load lab for the coordinator: real Redis, several real workers (each a thread, as several worker
processes would be), and a step that takes a set time and records who ran when."""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from runtime.bus.streams import StreamsBus
from runtime.components.builtin import builtin_registry
from runtime.components.registry import spec_from_descriptor
from runtime.coordinator.fair_queue import FairnessConfig
from runtime.coordinator.quotas import QuotaStore, TenantQuota
from runtime.worker import Worker, WorkerConfig
from tests.runtime.conftest import START, node


@dataclass
class Execution:
    tenant: str
    flow: str
    begun: float
    ended: float
    sent: float

    @property
    def latency(self) -> float:
        return self.ended - self.sent


@dataclass
class Lab:
    redis: Any
    executions: list[Execution] = field(default_factory=list)
    running: dict[str, int] = field(default_factory=dict)
    peak: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    versions: dict[tuple[str, str], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bus = StreamsBus(self.redis, max_backlog=0)

        def work(message, fields, context):
            begun = time.time()
            with self.lock:
                now = self.running.get(context.tenant_id, 0) + 1
                self.running[context.tenant_id] = now
                self.peak[context.tenant_id] = max(self.peak.get(context.tenant_id, 0), now)
            time.sleep(float(fields["ms"]) / 1000)
            with self.lock:
                self.running[context.tenant_id] -= 1
                self.executions.append(
                    Execution(context.tenant_id, context.flow_id, begun, time.time(), message.data["sent"])
                )
            return None

        self.registry = builtin_registry().with_components(
            spec_from_descriptor("lab", {"actions": {"work": {"fields": {}}}}, {"work": work})
        )

    def flow(self, tenant: str, flow: str, step_ms: float) -> str:
        version = uuid.uuid4().hex
        graph = {
            "nodes": [START, node("work", "lab", "work", fields={"ms": step_ms})],
            "edges": [{"source": "start", "target": "work"}],
        }
        self.bus.publish_version(tenant, flow, version, graph)
        self.versions[(tenant, flow)] = version
        return version

    def send(self, tenant: str, flow: str, count: int = 1) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for _ in range(count):
            self.bus.start_run(
                tenant,
                flow,
                self.versions[(tenant, flow)],
                "work",  # straight to the measured step: one message per run
                {"data": {"sent": time.time()}},
                pipeline=pipe,
            )
        pipe.execute()

    def quota(self, tenant: str, **values: int) -> None:
        QuotaStore(self.redis).write(tenant, TenantQuota(**values))

    def work_ms(
        self, tenant: str, since: float = 0.0, until: float = float("inf"), flow: str | None = None
    ) -> float:
        """Step time of the tenant (or one of its flows) within a window."""
        with self.lock:
            done = list(self.executions)
        return 1000 * sum(
            max(0.0, min(e.ended, until) - max(e.begun, since))
            for e in done
            if e.tenant == tenant and (flow is None or e.flow == flow)
        )

    def latencies(self, tenant: str, flow: str | None = None) -> list[float]:
        with self.lock:
            return [
                e.latency for e in self.executions if e.tenant == tenant and (flow is None or e.flow == flow)
            ]


@pytest.fixture
def lab(redis) -> Lab:
    return Lab(redis)


@pytest.fixture
def workers(lab: Lab) -> Iterator[Any]:
    """Start n workers on the lab (each a thread with its own connection's worth of state)."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(n: int, fairness: FairnessConfig | None = None) -> None:
        for i in range(n):
            config = WorkerConfig(
                name=f"lab-{i}-{uuid.uuid4().hex[:6]}",
                housekeeping_interval_s=0.05,
                fairness=fairness or FairnessConfig(),
            )
            worker = Worker(lab.bus, lab.registry, config)
            thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
            thread.start()
            threads.append(thread)
        time.sleep(0.2)  # every worker has announced itself

    yield start
    stop.set()
    for thread in threads:
        thread.join(10)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]


def jain(values: list[float]) -> float:
    """Jain's fairness index: 1 when all equal, 1/n when one gets everything."""
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values))


def steady(lab: Lab, tenant: str, flow: str, every_s: float, duration_s: float) -> None:
    """A light, steady load: one message every `every_s` for `duration_s`."""
    end = time.monotonic() + duration_s
    while time.monotonic() < end:
        lab.send(tenant, flow)
        time.sleep(every_s)
