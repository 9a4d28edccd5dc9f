"""Streams bus benchmark: a 3-step flow (trigger -> JSONata transform -> sink) against this machine's raw
Redis Streams ceiling, measured in the same run on the same Redis server.

    .venv/bin/python -m bench.bus [--messages 100000] [--workers 1 2]

Prints messages/s and end-to-end latency (run accepted -> run finished) for 1 and 2 worker processes (and 1
worker without step fusion as a baseline), the raw
ceiling (one producer and one consumer process doing batched XADD and XREADGROUP+XACK of the same messages
with no flow logic) and the ratio. A low-load phase measures latency when the workers are idle.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import threading
import time
import uuid

import orjson
import psutil
import redis

from bench.common import BenchRedis, percentile
from runtime.bus.keys import TenantKeys
from runtime.bus.streams import StreamsBus
from runtime.components.builtin import builtin_registry
from runtime.components.registry import spec_from_descriptor
from runtime.worker import Worker, WorkerConfig

TENANT = "bench"
FLOW = {
    "nodes": [
        {"id": "start", "component": "manual", "function": "start"},
        {"id": "shape", "component": "jsonata", "function": "transform",
         "fields": {"expression": "{'id': id, 'name': $uppercase(name), 'total': price * qty}"}},
        {"id": "sink", "component": "sink", "function": "drop"},
    ],
    "edges": [{"source": "start", "target": "shape"}, {"source": "shape", "target": "sink"}],
}  # fmt: skip
MESSAGE = {"id": 1, "name": "widget", "price": 2.5, "qty": 4}


def _registry():
    return builtin_registry().with_components(
        spec_from_descriptor("sink", {"actions": {"drop": {"fields": {}}}}, {"drop": lambda m, f, c: None})
    )


def _worker_process(url: str, name: str, stop: mp.Event, record: bool, fuse_limit: int) -> None:
    bus = StreamsBus(redis.Redis.from_url(url), max_backlog=10_000_000)
    config = WorkerConfig(name=name, batch_size=200, record_data=record, fuse_limit=fuse_limit)
    flag = threading.Event()
    threading.Thread(target=lambda: (stop.wait(), flag.set()), daemon=True).start()
    Worker(bus, _registry(), config).run(flag)


def _produce(url: str, version: str, count: int, rate: float | None) -> None:
    bus = StreamsBus(redis.Redis.from_url(url), max_backlog=10_000_000)
    pipe = bus.redis.pipeline(transaction=False)
    began = time.perf_counter()
    for i in range(count):
        bus.start_run(TENANT, "flow", version, "start", {"data": {**MESSAGE, "id": i}}, pipeline=pipe)
        if rate is None:
            if len(pipe) >= 100:
                pipe.execute()
        else:
            pipe.execute()
            wait = began + (i + 1) / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
    pipe.execute()


def _finished_latencies(client: redis.Redis, since: str = "-") -> list[float]:
    latencies = []
    for _, fields in client.xrange(TenantKeys(TENANT).events, min=since):
        for event in orjson.loads(fields[b"e"]):
            if event["t"] == "run.finished":
                latencies.append(event["ts"] - event["started"])
    return latencies


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def flow_run(url: str, workers: int, messages: int, record: bool, fuse_limit: int, redis_pid: int) -> dict:
    client = redis.Redis.from_url(url)
    client.flushall()
    bus = StreamsBus(client, max_backlog=10_000_000)
    version = uuid.uuid4().hex
    bus.publish_version(TENANT, "flow", version, FLOW)
    bus.ensure_tenant(TENANT)
    stop = mp.Event()
    procs = [
        mp.Process(target=_worker_process, args=(url, f"w{i}", stop, record, fuse_limit))
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    time.sleep(1.0)  # workers connected and idle

    # Low load first: one run at a time, workers idle between them.
    _produce(url, version, 500, rate=250)
    while bus.backlog(TENANT) > 0:
        time.sleep(0.01)
    low = _finished_latencies(client)
    mark = client.xinfo_stream(TenantKeys(TENANT).events)["last-generated-id"]

    producer = mp.Process(target=_produce, args=(url, version, messages, None))
    worker_pids = [p.pid for p in procs if p.pid is not None]
    cpu_before = _cpu_seconds(worker_pids), _cpu_seconds([redis_pid])
    began = time.perf_counter()
    producer.start()
    producer.join()
    while bus.backlog(TENANT) > 0:
        time.sleep(0.005)
    elapsed = time.perf_counter() - began
    worker_cpu = _cpu_seconds(worker_pids) - cpu_before[0]
    redis_cpu = _cpu_seconds([redis_pid]) - cpu_before[1]
    loaded = _finished_latencies(client, since=f"({mark.decode() if isinstance(mark, bytes) else mark}")
    stop.set()
    for p in procs:
        p.join(10)
    return {
        "workers": workers,
        "rate": messages / elapsed,
        "p50": percentile(loaded, 50),
        "p99": percentile(loaded, 99),
        "low_p50": percentile(low, 50),
        "low_p99": percentile(low, 99),
        "completed": len(loaded),
        # CPU time per message: what one more core would buy, and who would need it.
        "worker_us": worker_cpu / messages * 1e6,
        "redis_us": redis_cpu / messages * 1e6,
        "elapsed": elapsed,
    }


def _raw_producer(url: str, count: int, payload: bytes) -> None:
    client = redis.Redis.from_url(url)
    pipe = client.pipeline(transaction=False)
    for _ in range(count):
        pipe.xadd("raw", {"m": payload})
        if len(pipe) >= 100:
            pipe.execute()
    pipe.execute()


def _raw_consumer(url: str, count: int, done: mp.Event) -> None:
    client = redis.Redis.from_url(url)
    seen = 0
    while seen < count:
        reply = client.xreadgroup("g", "c", {"raw": ">"}, count=100, block=1000)
        for _, entries in reply or []:
            ids = [entry_id for entry_id, _ in entries]
            client.xack("raw", "g", *ids)
            seen += len(ids)
    done.set()


def raw_ceiling(url: str, messages: int) -> float:
    client = redis.Redis.from_url(url)
    client.flushall()
    client.xgroup_create("raw", "g", id="0", mkstream=True)
    payload = orjson.dumps({"t": TENANT, "f": "flow", "v": "x" * 32, "r": "y" * 32, "s": "shape", "m": "z" * 32,
                            "a": 1, "c": 0, "b": {"data": MESSAGE}})  # fmt: skip
    done = mp.Event()
    consumer = mp.Process(target=_raw_consumer, args=(url, messages, done))
    consumer.start()
    time.sleep(0.5)
    began = time.perf_counter()
    producer = mp.Process(target=_raw_producer, args=(url, messages, payload))
    producer.start()
    producer.join()
    done.wait()
    elapsed = time.perf_counter() - began
    consumer.join()
    return messages / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-record", action="store_true", help="do not record step input/output in events")
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the 1-worker run without step fusion"
    )
    args = parser.parse_args()
    server = BenchRedis()
    try:
        print(f"Redis {server.version}, AOF everysec; {args.messages:,} messages; cores: {mp.cpu_count()}")
        ceiling = raw_ceiling(server.url, args.messages)
        print(f"raw ceiling (XADD x100 pipelined | XREADGROUP 100 + XACK): {ceiling:,.0f} msg/s")
        # The transform is fusible (runs in the trigger's commit); the sink stands for a step with I/O and is
        # delivered through the stream. The unfused run is the baseline of the previous design.
        configurations = [(w, 64) for w in args.workers] + ([] if args.no_baseline else [(1, 0)])
        for workers, fuse_limit in configurations:
            result = flow_run(
                server.url, workers, args.messages, not args.no_record, fuse_limit, server.process.pid
            )
            label = "fused" if fuse_limit else "unfused"
            print(
                f"3-step flow, {workers} worker(s), {label}: {result['rate']:,.0f} msg/s "
                f"({result['rate'] / ceiling:.2f}x raw ceiling) | under load p50 {result['p50']:.0f} ms, "
                f"p99 {result['p99']:.0f} ms | low load p50 {result['low_p50']:.1f} ms, p99 {result['low_p99']:.1f} ms"
                f" | runs completed {result['completed']:,}"
                f" | CPU per message: workers {result['worker_us']:.0f} us, Redis {result['redis_us']:.0f} us"
            )
    finally:
        server.close()


if __name__ == "__main__":
    main()
