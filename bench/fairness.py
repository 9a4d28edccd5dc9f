"""Fair share under a flood: tenant A floods the workers with slow steps while tenant B sends a light, steady
load; the same workload then runs on a single shared FIFO queue (what n8n's queue mode does) as the baseline.

    .venv/bin/python -m bench.fairness [--workers 4] [--duration 6]

Prints B's p50/p99 latency (sent -> its step done) alone and under the flood, and Jain's fairness index of the
worker time, for the hub's coordinator and for the FIFO baseline. Jain's index is computed on each tenant's
worker time divided by its max-min fair share (B's share is what it asks for, A gets the rest), so 1.0 means
each got what fairness entitles it to. A second scenario floods with both tenants, A's steps 10x longer than
B's: there the fair split is equal worker time, and Jain's index is on the raw worker time.

Workers are separate processes on a private redis-server (AOF everysec); steps sleep, so the two cores of this
machine are not the limit.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import threading
import time
import uuid
from typing import Any

import orjson
import redis

from bench.common import BenchRedis
from runtime.bus.streams import StreamsBus
from runtime.components.builtin import builtin_registry
from runtime.components.registry import spec_from_descriptor
from runtime.worker import Worker, WorkerConfig

DONE = "bench:done"
FIFO = "bench:fifo"


def _record(client: redis.Redis, tenant: str, sent: float, begun: float) -> None:
    doc = {"t": tenant, "sent": sent, "begun": begun, "ended": time.time()}
    client.rpush(DONE, orjson.dumps(doc))


def _registry(url: str):
    client = redis.Redis.from_url(url)

    def work(message, fields, context):
        begun = time.time()
        time.sleep(float(fields["ms"]) / 1000)
        _record(client, context.tenant_id, message.data["sent"], begun)

    return builtin_registry().with_components(
        spec_from_descriptor("bench", {"actions": {"work": {"fields": {}}}}, {"work": work})
    )


def _hub_worker(url: str, name: str, stop: Any) -> None:
    flag = threading.Event()
    threading.Thread(target=lambda: (stop.wait(), flag.set()), daemon=True).start()
    bus = StreamsBus(redis.Redis.from_url(url), max_backlog=0)
    Worker(bus, _registry(url), WorkerConfig(name=name)).run(flag)


def _fifo_worker(url: str, stop: Any) -> None:
    """The baseline: one list for everybody, oldest first."""
    client = redis.Redis.from_url(url)
    while not stop.is_set():
        item = client.brpop([FIFO], timeout=0.2)
        if item is None:
            continue
        doc = orjson.loads(item[1])
        begun = time.time()
        time.sleep(doc["ms"] / 1000)
        _record(client, doc["tenant"], doc["sent"], begun)


class Hub:
    name = "hub (fair share)"

    def __init__(self, url: str) -> None:
        self.url = url
        self.bus = StreamsBus(redis.Redis.from_url(url), max_backlog=0)
        self.versions: dict[str, str] = {}

    def setup(self, tenant: str, step_ms: float) -> None:
        version = uuid.uuid4().hex
        # Runs start straight at the measured step: one message per run.
        graph = {"nodes": [{"id": "start", "component": "manual", "function": "start"},
                           {"id": "work", "component": "bench", "function": "work", "fields": {"ms": step_ms}}],
                 "edges": [{"source": "start", "target": "work"}]}  # fmt: skip
        self.bus.publish_version(tenant, "flow", version, graph)
        self.versions[tenant] = version

    def send(self, tenant: str, count: int) -> None:
        pipe = self.bus.redis.pipeline(transaction=False)
        for _ in range(count):
            data = {"data": {"sent": time.time()}}
            self.bus.start_run(tenant, "flow", self.versions[tenant], "work", data, pipeline=pipe)
            if len(pipe) >= 1000:
                pipe.execute()
        pipe.execute()

    def start(self, workers: int, stop: Any) -> list[mp.Process]:
        return [mp.Process(target=_hub_worker, args=(self.url, f"bench-{i}", stop)) for i in range(workers)]


class Fifo:
    name = "single FIFO queue"

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = redis.Redis.from_url(url)
        self.step_ms: dict[str, float] = {}

    def setup(self, tenant: str, step_ms: float) -> None:
        self.step_ms[tenant] = step_ms

    def send(self, tenant: str, count: int) -> None:
        pipe = self.client.pipeline(transaction=False)
        for _ in range(count):
            pipe.lpush(
                FIFO, orjson.dumps({"tenant": tenant, "ms": self.step_ms[tenant], "sent": time.time()})
            )
            if len(pipe) >= 1000:
                pipe.execute()
        pipe.execute()

    def start(self, workers: int, stop: Any) -> list[mp.Process]:
        return [mp.Process(target=_fifo_worker, args=(self.url, stop)) for _ in range(workers)]


def _records(client: redis.Redis) -> list[dict[str, Any]]:
    return [orjson.loads(raw) for raw in client.lrange(DONE, 0, -1)]


def _pct(values: list[float], q: int) -> float:
    """In ms; nan when nothing finished (a FIFO can leave B's work undone behind the flood)."""
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else float("nan")


def _jain(values: list[float]) -> float:
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values)) if any(values) else float("nan")


def _worker_ms(records: list[dict[str, Any]], tenant: str, since: float, until: float) -> float:
    return 1000 * sum(
        max(0.0, min(r["ended"], until) - max(r["begun"], since)) for r in records if r["t"] == tenant
    )


def _steady(system, tenant: str, every_s: float, duration_s: float) -> int:
    """Returns how many it sent."""
    sent = 0
    end = time.monotonic() + duration_s
    while time.monotonic() < end:
        system.send(tenant, 1)
        sent += 1
        time.sleep(every_s)
    return sent


def flood_with_light_tenant(system, workers: int, duration: float) -> dict[str, float]:
    client = redis.Redis.from_url(system.url)
    system.setup("a", 40)
    system.setup("b", 5)
    stop = mp.Event()
    procs = system.start(workers, stop)
    for p in procs:
        p.start()
    try:
        time.sleep(1.0)
        system.send("b", 1)  # warm-up
        time.sleep(0.3)
        client.delete(DONE)
        _steady(system, "b", 0.03, duration / 2)
        time.sleep(0.3)
        alone = [r["ended"] - r["sent"] for r in _records(client) if r["t"] == "b"]
        client.delete(DONE)
        system.send("a", int(20 * workers * duration / 0.040))  # 20x what the workers can do in the phase
        time.sleep(0.5)
        began = time.time()
        sent_b = _steady(system, "b", 0.03, duration)
        ended = time.time()
        time.sleep(0.3)
        records = _records(client)
    finally:
        stop.set()
        for p in procs:
            p.join(10)
    flooded = [r["ended"] - r["sent"] for r in records if r["t"] == "b" and began <= r["sent"] <= ended]
    used_a, used_b = (_worker_ms(records, t, began, ended) for t in ("a", "b"))
    capacity = workers * (ended - began) * 1000
    # Max-min fair shares: B is entitled to what it asks for (its steps sent in the window), A to the rest.
    demand_b = sent_b * 5.0
    fair_b = min(demand_b, capacity / 2)
    fair_a = capacity - fair_b
    return {
        "b_alone_p50": _pct(alone, 50),
        "b_alone_p99": _pct(alone, 99),
        "b_flood_p50": _pct(flooded, 50),
        "b_flood_p99": _pct(flooded, 99),
        "b_done": len(flooded),
        "b_sent": sent_b,
        "jain": _jain([used_a / fair_a, used_b / fair_b]),
        "a_ms": used_a,
        "b_ms": used_b,
    }


def both_flood(system, workers: int, duration: float) -> dict[str, float]:
    client = redis.Redis.from_url(system.url)
    system.setup("a", 30)
    system.setup("b", 3)
    system.send("a", int(workers * duration / 0.030) + 100)
    system.send("b", int(workers * duration / 0.003) + 1000)
    stop = mp.Event()
    procs = system.start(workers, stop)
    for p in procs:
        p.start()
    time.sleep(1.0)
    began = time.time()
    time.sleep(duration)
    ended = time.time()
    stop.set()
    for p in procs:
        p.join(10)
    records = _records(client)
    used = [_worker_ms(records, t, began, ended) for t in ("a", "b")]
    return {"a_ms": used[0], "b_ms": used[1], "jain": _jain(used)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--duration", type=float, default=6.0)
    args = parser.parse_args()
    results = {}
    for kind in (Hub, Fifo):
        for scenario in (flood_with_light_tenant, both_flood):
            server = BenchRedis()
            try:
                results[(kind.name, scenario.__name__)] = scenario(
                    kind(server.url), args.workers, args.duration
                )
            finally:
                server.close()
    print(f"{args.workers} workers (processes), {args.duration:.0f} s per phase\n")
    print("Flood: A sends 20x what the workers can do (40 ms steps), B one message every 30 ms (5 ms steps)")
    print(f"{'':22} {'B p50 alone':>12} {'B p99 alone':>12} {'B p50 flood':>12} {'B p99 flood':>12} "
          f"{'p99 ratio':>10} {'Jain':>6}")  # fmt: skip
    for kind in (Hub, Fifo):
        r = results[(kind.name, "flood_with_light_tenant")]
        if r["b_done"] < 2:
            flood = f"{'none of B done: all queued behind A':>38}"
        else:
            ratio = r["b_flood_p99"] / r["b_alone_p99"]
            flood = f"{r['b_flood_p50']:10.1f}ms {r['b_flood_p99']:10.1f}ms {ratio:9.1f}x"
        print(f"{kind.name:22} {r['b_alone_p50']:10.1f}ms {r['b_alone_p99']:10.1f}ms {flood} {r['jain']:6.3f}"
              f"   (B done: {r['b_done']} of {r['b_sent']})")  # fmt: skip
    print("\nBoth flood, A's steps 10x longer (30 ms vs 3 ms): worker time of each, Jain's index")
    for kind in (Hub, Fifo):
        r = results[(kind.name, "both_flood")]
        print(f"{kind.name:22} A {r['a_ms']:8.0f} ms  B {r['b_ms']:8.0f} ms  Jain {r['jain']:.3f}")


if __name__ == "__main__":
    main()
