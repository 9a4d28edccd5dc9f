"""What the coordinator knows about each tenant right now, for the admin page and Prometheus."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis

from runtime.bus import keys
from runtime.bus.keys import TenantKeys
from runtime.coordinator import usage
from runtime.coordinator.fair_queue import leased_messages


@dataclass(frozen=True)
class TenantFigures:
    tenant: str
    backlog: int  # messages waiting or being processed (incl. delayed retries)
    running: int  # messages in batches being processed now
    delayed: int
    dead: int
    usage: usage.Usage = field(default_factory=usage.Usage)


@dataclass(frozen=True)
class Report:
    workers: int
    tenants: list[TenantFigures]


def report(client: redis.Redis, tenants: Iterable[str] | None = None) -> Report:
    tenants = sorted(tenants if tenants is not None else (t.decode() for t in client.smembers(keys.TENANTS)))
    now_ms = int(time.time() * 1000)
    pipe = client.pipeline(transaction=False)
    pipe.zcount(keys.FAIR_WORKERS, now_ms, "+inf")
    for tenant in tenants:
        tk = TenantKeys(tenant)
        pipe.get(tk.backlog)
        pipe.zrangebyscore(tk.leases, now_ms, "+inf")
        pipe.zcard(tk.delayed)
        pipe.xlen(tk.dead)
    workers, *raw = pipe.execute()
    used = usage.read(client, tenants)
    figures = []
    for i, tenant in enumerate(tenants):
        backlog, leases, delayed, dead = raw[i * 4 : i * 4 + 4]
        figures.append(
            TenantFigures(
                tenant=tenant,
                backlog=int(backlog or 0),
                running=leased_messages(leases),
                delayed=int(delayed),
                dead=int(dead),
                usage=used[tenant],
            )
        )
    return Report(int(workers), figures)


def exposition(data: Report, names: dict[str, str] | None = None) -> bytes:
    """Prometheus text format. `names`: tenant id -> a readable label value (the tenant's slug)."""
    names = names or {}
    lines = [
        "# HELP hub_workers Workers that announced themselves in the last seconds.",
        "# TYPE hub_workers gauge",
        f"hub_workers {data.workers}",
    ]
    gauges = [
        ("hub_tenant_backlog", "Messages of the tenant waiting or in process.", lambda f: f.backlog),
        ("hub_tenant_running_steps", "Messages of the tenant being processed now.", lambda f: f.running),
        ("hub_tenant_delayed", "Retries and delays of the tenant waiting for their time.", lambda f: f.delayed),
        ("hub_tenant_dead_letters", "Dead letters of the tenant.", lambda f: f.dead),
        ("hub_tenant_worker_seconds_last_minute", "Worker time used by the tenant in the last 60 s.",
         lambda f: round(f.usage.worker_ms_minute / 1000, 3)),
        ("hub_tenant_worker_seconds_last_hour", "Worker time used by the tenant in the last hour.",
         lambda f: round(f.usage.worker_ms_hour / 1000, 3)),
        ("hub_tenant_steps_last_minute", "Messages the tenant's steps processed in the last 60 s.",
         lambda f: f.usage.steps_minute),
    ]  # fmt: skip
    for name, help_text, value in gauges:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        lines += [
            f'{name}{{tenant="{label(names.get(f.tenant, f.tenant))}"}} {value(f)}' for f in data.tenants
        ]
    name = "hub_tenant_throttled_last_hour"
    lines += [
        f"# HELP {name} Requests refused by the tenant's quotas in the last hour, by reason (rate, backlog).",
        f"# TYPE {name} gauge",
    ]
    for f in data.tenants:
        for reason, count in sorted((f.usage.throttled_hour or {}).items()):
            lines.append(
                f'{name}{{tenant="{label(names.get(f.tenant, f.tenant))}",reason="{reason}"}} {count}'
            )
    return ("\n".join(lines) + "\n").encode()


def label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
