"""Worker time and throttling per tenant, in one-minute buckets kept for an hour: what the admin page and the
Prometheus metrics show, and what the bad-citizen watch reads."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import redis

from runtime.bus.keys import TenantKeys

KEEP_S = 3_900  # an hour of buckets, and the one being written


def minute(at: float | None = None) -> int:
    return int((time.time() if at is None else at) // 60)


def record(pipe: redis.client.Pipeline, tenant: str, used_ms: float, steps: int) -> None:
    key = TenantKeys(tenant).usage(minute())
    pipe.hincrbyfloat(key, "ms", round(used_ms, 3))
    pipe.hincrby(key, "steps", steps)
    pipe.expire(key, KEEP_S)


@dataclass(frozen=True)
class Usage:
    worker_ms_minute: float = 0.0  # the last 60 s (sliding: the running minute and a part of the one before)
    worker_ms_hour: float = 0.0
    steps_minute: int = 0
    steps_hour: int = 0
    throttled_minute: dict[str, int] | None = None
    throttled_hour: dict[str, int] | None = None


def read(client: redis.Redis, tenants: Iterable[str]) -> dict[str, Usage]:
    tenants = list(tenants)
    at = time.time()
    now = minute(at)
    buckets = list(range(now - 59, now + 1))
    pipe = client.pipeline(transaction=False)
    for tenant in tenants:
        tk = TenantKeys(tenant)
        for m in buckets:
            pipe.hgetall(tk.usage(m))
    raw = pipe.execute()
    result = {}
    for i, tenant in enumerate(tenants):
        hour = raw[i * len(buckets) : (i + 1) * len(buckets)]
        result[tenant] = _sum(hour, previous_part=1 - (at % 60) / 60)
    return result


def _sum(hour: list[dict[bytes, bytes]], previous_part: float) -> Usage:
    """Totals of the hour, and of the last minute estimated as the running bucket plus the part of the
    previous one that is still within 60 s (assuming it was spread evenly)."""
    totals = {"ms": [0.0, 0.0], "steps": [0.0, 0.0]}
    throttled: list[dict[str, float]] = [{}, {}]
    for index, bucket in enumerate(hour):
        part = {len(hour) - 1: 1.0, len(hour) - 2: previous_part}.get(index, 0.0)
        for name, value in bucket.items():
            key, amount = name.decode(), float(value)
            for span, share in ((0, part), (1, 1.0)):
                if not share:
                    continue
                if key in totals:
                    totals[key][span] += amount * share
                elif key.startswith("throttled:"):
                    reason = key.split(":", 1)[1]
                    throttled[span][reason] = throttled[span].get(reason, 0) + amount * share
    return Usage(
        worker_ms_minute=totals["ms"][0],
        worker_ms_hour=totals["ms"][1],
        steps_minute=round(totals["steps"][0]),
        steps_hour=round(totals["steps"][1]),
        throttled_minute={k: round(v) for k, v in throttled[0].items()},
        throttled_hour={k: round(v) for k, v in throttled[1].items()},
    )
