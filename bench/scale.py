"""Scaling figures for sizing a cluster: throughput with 1, 2 and 3 workers and with 1, 2 and 3 routers, and the
Redis CPU each costs per 10,000 messages or requests.

    .venv/bin/python -m bench.scale [--messages 30000] [--duration 5]

Workers: bench/bus.py's 3-step flow (trigger -> JSONata -> sink) with N worker processes on a private Redis.
Routers: `hub router --workers N` (N processes on one port) taking async webhooks from wrk (64 connections),
nothing running the runs (the router's own ceiling). The baseline of each is its 1-process figure, in the same
run. The machine's CPU use is printed with each figure: on a small machine the processes, wrk and Redis share
the same cores, and a flat line past the core count is the machine's limit, not the design's. Needs wrk.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import sys
import time

import psutil

from bench.bus import flow_run
from bench.common import BenchRedis
from bench.webhook import PEERS, TOOLS, Hub, forget_backlog, wait_http, wrk


def _cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def workers_scale(server: BenchRedis, counts: list[int], messages: int) -> list[dict]:
    rows = []
    for count in counts:
        psutil.cpu_percent()  # starts the machine's measurement window
        result = flow_run(server.url, count, messages, True, 64, server.process.pid)
        result["machine_cpu"] = psutil.cpu_percent()
        rows.append(result)
    return rows


def routers_scale(server: BenchRedis, counts: list[int], duration: int) -> list[dict]:
    TOOLS.mkdir(parents=True, exist_ok=True)
    for name in ("body.json", "post.lua"):  # wrk's request script and body, where bench.webhook keeps them
        shutil.copy(PEERS / name, TOOLS / name)
    hub = Hub(server.url, workers=0)
    rows = []
    try:
        hub.prepare()
        base = f"http://127.0.0.1:{hub.router_port}"
        for count in counts:
            hub.start("router", "router", "--workers", str(count))
            wait_http(f"{base}/healthz")
            time.sleep(1.0)  # every process listening
            redis_before = _cpu(server.process.pid)
            psutil.cpu_percent()
            result = wrk(f"router x{count}", base + hub.urls["async"], 64, duration)
            machine = psutil.cpu_percent()
            redis_s = _cpu(server.process.pid) - redis_before
            rows.append({"routers": count, "rate": result.rps, "p99": result.p99_ms, "errors": result.errors,
                         "non2xx": result.non2xx, "redis_us": redis_s / max(result.requests, 1) * 1e6,
                         "machine_cpu": machine})  # fmt: skip
            hub.stop("router")
            forget_backlog(server.url, hub.urls["async_tenant"])
    finally:
        hub.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    server = BenchRedis()
    try:
        print(f"Redis {server.version} (AOF everysec); {mp.cpu_count()} cores on this machine")
        print("\nworkers (3-step flow):")
        workers = workers_scale(server, args.counts, args.messages)
        base = workers[0]["rate"]
        for row in workers:
            print(f"  {row['workers']} worker(s): {row['rate']:8,.0f} msg/s  {row['rate'] / base:4.2f}x  "
                  f"p99 {row['p99']:5.0f} ms  Redis CPU {row['redis_us'] * 10_000 / 1e6:5.2f} s per 10k msgs  "
                  f"machine CPU {row['machine_cpu']:3.0f}%")  # fmt: skip
        print("\nrouters (async webhooks, 64 connections):")
        routers = routers_scale(server, args.counts, args.duration)
        base = routers[0]["rate"]
        for row in routers:
            print(f"  {row['routers']} router(s): {row['rate']:8,.0f} req/s  {row['rate'] / base:4.2f}x  "
                  f"p99 {row['p99']:5.1f} ms  Redis CPU {row['redis_us'] * 10_000 / 1e6:5.2f} s per 10k reqs  "
                  f"machine CPU {row['machine_cpu']:3.0f}%  errors {row['errors'] + row['non2xx']}")  # fmt: skip
    finally:
        server.close()


if __name__ == "__main__":
    main()
