"""Step executions counted for `/metrics`: by tenant, component and outcome, with a duration histogram.

The recorder is the one place that sees every step of every worker, so it counts them in Redis as it records
them; the hub's /metrics reads the totals. Counted after the write commits, so a batch recorded twice (a
recorder died before acknowledging) is counted twice: rare, and a counter that is at worst slightly high is
what Prometheus users expect from a restart anyway."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis

KEY = "hub:metrics:steps"
SEP = "\x1f"  # between the parts of a field: a character no component name or status holds
BUCKETS_MS = (1, 5, 10, 50, 100, 500, 1000, 5000, 30_000, 120_000)


def count_steps(client: redis.Redis, rows: Iterable[dict[str, Any]]) -> None:
    """Add recorded step rows (the writer's dicts) to the totals: one round trip per batch."""
    totals: Counter[str] = Counter()
    ms: Counter[str] = Counter()
    for row in rows:
        tenant, component = row["tenant_id"].hex, row["component"] or "-"
        totals[SEP.join((tenant, component, row["status"], "n"))] += 1
        duration = float(row.get("duration_ms") or 0.0)
        ms[SEP.join((tenant, component, "ms"))] += duration
        for bound in BUCKETS_MS:
            if duration <= bound:
                totals[SEP.join((tenant, component, f"le{bound}"))] += 1
        totals[SEP.join((tenant, component, "count"))] += 1
    if not totals:
        return
    pipe = client.pipeline(transaction=False)
    for field, value in totals.items():
        pipe.hincrby(KEY, field, value)
    for field, value in ms.items():
        pipe.hincrbyfloat(KEY, field, round(value, 3))
    pipe.execute()


@dataclass(frozen=True)
class StepFigures:
    executions: dict[tuple[str, str, str], int]  # (tenant, component, status) -> count
    buckets: dict[tuple[str, str], list[int]]  # (tenant, component) -> cumulative counts per BUCKETS_MS
    count: dict[tuple[str, str], int]
    sum_ms: dict[tuple[str, str], float]


def read_figures(client: redis.Redis) -> StepFigures:
    executions: dict[tuple[str, str, str], int] = {}
    buckets: dict[tuple[str, str], list[int]] = {}
    count: dict[tuple[str, str], int] = {}
    sum_ms: dict[tuple[str, str], float] = {}
    for raw_field, raw_value in client.hgetall(KEY).items():
        parts = raw_field.decode().split(SEP)
        value = raw_value.decode()
        if len(parts) == 4 and parts[3] == "n":
            executions[(parts[0], parts[1], parts[2])] = int(value)
        elif len(parts) == 3:
            key, what = (parts[0], parts[1]), parts[2]
            if what == "ms":
                sum_ms[key] = float(value)
            elif what == "count":
                count[key] = int(value)
            elif what.startswith("le"):
                slots = buckets.setdefault(key, [0] * len(BUCKETS_MS))
                bound = float(what[2:])
                if bound in BUCKETS_MS:
                    slots[BUCKETS_MS.index(bound)] = int(value)
    return StepFigures(executions, buckets, count, sum_ms)


def exposition(figures: StepFigures, names: dict[str, str], label: Any) -> list[str]:
    """Prometheus lines; `names`: tenant id -> slug, `label`: the escaping of label values."""

    def tenant(t: str) -> str:
        return label(names.get(t, t))

    lines = ["# HELP hub_step_executions_total Step executions recorded, by tenant, component and outcome.",
             "# TYPE hub_step_executions_total counter"]  # fmt: skip
    for (t, component, status), value in sorted(figures.executions.items()):
        lines.append(f'hub_step_executions_total{{tenant="{tenant(t)}",component="{label(component)}",'
                     f'status="{label(status)}"}} {value}')  # fmt: skip
    lines += ["# HELP hub_step_duration_seconds Time a step took, by tenant and component.",
              "# TYPE hub_step_duration_seconds histogram"]  # fmt: skip
    for key in sorted(figures.count):
        t, component = key
        labels = f'tenant="{tenant(t)}",component="{label(component)}"'
        slots = figures.buckets.get(key, [0] * len(BUCKETS_MS))
        for bound, value in zip(BUCKETS_MS, slots, strict=True):
            lines.append(f'hub_step_duration_seconds_bucket{{{labels},le="{_seconds(bound)}"}} {value}')
        lines.append(f'hub_step_duration_seconds_bucket{{{labels},le="+Inf"}} {figures.count[key]}')
        lines.append(f"hub_step_duration_seconds_sum{{{labels}}} {figures.sum_ms.get(key, 0.0) / 1000:.6f}")
        lines.append(f"hub_step_duration_seconds_count{{{labels}}} {figures.count[key]}")
    return lines


def _seconds(ms: float) -> str:
    value = ms / 1000
    return str(int(value)) if math.isclose(value, round(value)) and value >= 1 else f"{value:g}"
