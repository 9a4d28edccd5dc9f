"""Fair share between tenants and between a tenant's flows, on measured worker time, across several workers."""

from __future__ import annotations

import time

from runtime.coordinator.fair_queue import FairnessConfig
from tests.runtime.coordinator.conftest import jain, p99, steady

WORKERS = 4


def _wait_until_idle(lab, tenant: str, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(lab.latencies(tenant)) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(lab.latencies(tenant)) >= count, f"{tenant} finished {len(lab.latencies(tenant))} of {count}"


def test_a_light_tenant_keeps_its_latency_while_another_floods(lab, workers) -> None:
    """A floods 20x what the workers can do in the test with slow steps; B's p99 stays within 2x of alone (and a
    scheduling allowance)."""
    lab.flow("a", "flood", step_ms=40)
    lab.flow("b", "light", step_ms=5)
    workers(WORKERS)
    lab.send("b", "light")  # the first run compiles the plan: not part of what is measured
    _wait_until_idle(lab, "b", 1)
    lab.executions.clear()
    steady(lab, "b", "light", every_s=0.03, duration_s=3.0)
    _wait_until_idle(lab, "b", 90)
    alone = p99(lab.latencies("b"))
    lab.executions.clear()

    capacity = WORKERS * 3.0 / 0.040  # messages the workers could do in 3 s
    lab.send("a", "flood", int(20 * capacity))
    time.sleep(0.3)  # the flood has the workers busy
    steady(lab, "b", "light", every_s=0.03, duration_s=3.0)
    _wait_until_idle(lab, "b", 90)
    flooded = p99(lab.latencies("b"))
    assert len(lab.latencies("a")) > 100, "the flood never got going"
    # 2x, plus 10 ms for the CPU the flood's workers take from B's on a 2-core machine (measured: 54.9 ms against
    # 2 x 26.6 on a slow day). A FIFO queue would make it seconds; bench/fairness.py keeps the exact figures.
    assert flooded <= 2 * alone + 0.010, (
        f"B's p99: {flooded * 1000:.1f} ms under the flood, {alone * 1000:.1f} ms alone"
    )


def test_worker_time_is_split_fairly_when_one_tenants_steps_take_ten_times_longer(lab, workers) -> None:
    lab.flow("slow", "f", step_ms=30)
    lab.flow("fast", "f", step_ms=3)
    lab.send("slow", "f", 2_000)
    lab.send("fast", "f", 20_000)
    workers(WORKERS)
    began = time.time()
    time.sleep(3.0)
    window = (began + 0.5, time.time())
    used = [lab.work_ms("slow", *window), lab.work_ms("fast", *window)]
    assert min(used) > 0
    assert jain(used) >= 0.95, f"worker ms slow/fast: {used[0]:.0f}/{used[1]:.0f}, Jain {jain(used):.3f}"


def test_weights_two_to_one_give_a_two_to_one_split(lab, workers) -> None:
    lab.flow("heavy", "f", step_ms=10)
    lab.flow("light", "f", step_ms=10)
    lab.quota("heavy", weight=2)
    lab.quota("light", weight=1)
    lab.send("heavy", "f", 5_000)
    lab.send("light", "f", 5_000)
    workers(WORKERS)
    began = time.time()
    time.sleep(3.0)
    window = (began + 0.5, time.time())
    ratio = lab.work_ms("heavy", *window) / lab.work_ms("light", *window)
    assert 1.8 <= ratio <= 2.2, f"split {ratio:.2f}:1"


def test_one_flooding_flow_does_not_starve_the_tenants_other_flow(lab, workers) -> None:
    lab.flow("a", "flood", step_ms=20)
    lab.flow("a", "other", step_ms=20)
    lab.send("a", "flood", 5_000)
    workers(WORKERS)
    time.sleep(0.3)
    lab.send("a", "other", 2_000)
    began = time.time()
    time.sleep(2.5)
    window = (began + 0.2, time.time())
    used = [lab.work_ms("a", *window, flow="flood"), lab.work_ms("a", *window, flow="other")]
    assert jain(used) >= 0.95, f"worker ms flood/other: {used[0]:.0f}/{used[1]:.0f}"


def test_an_idle_tenant_banks_no_more_than_the_credit_bound(lab, workers) -> None:
    """B was idle while A used the workers for seconds: when B floods too, B is ahead by at most the credit,
    and the split is fair again soon after, instead of B having the workers to itself for seconds."""
    lab.flow("a", "f", step_ms=10)
    lab.flow("b", "f", step_ms=10)
    lab.send("a", "f", 10_000)
    workers(WORKERS, FairnessConfig(credit_ms=200))
    time.sleep(2.0)  # A alone: some 8 s of worker time that B did not use
    lab.send("b", "f", 10_000)
    arrived = time.time()
    time.sleep(2.0)
    # Credit 200 ms (about 0.05 s of four workers) is used up long before this window starts.
    window = (arrived + 0.5, time.time())
    used = [lab.work_ms("a", *window), lab.work_ms("b", *window)]
    assert jain(used) >= 0.95, f"worker ms a/b after b came back: {used[0]:.0f}/{used[1]:.0f}"


def test_the_concurrency_quota_is_never_exceeded(lab, workers) -> None:
    lab.flow("capped", "f", step_ms=20)
    lab.flow("capped", "g", step_ms=20)
    lab.quota("capped", max_concurrent_steps=2)
    lab.send("capped", "f", 300)
    lab.send("capped", "g", 300)
    workers(WORKERS)
    time.sleep(2.0)
    assert lab.peak["capped"] == 2, f"peak concurrency {lab.peak['capped']}"
    done = len(lab.latencies("capped"))
    # Two at a time at 20 ms each: about 100 a second, not the 200 four workers would do.
    assert 120 <= done <= 220, done


def test_a_tenant_with_a_light_load_banks_no_credit_for_a_later_flood(lab, workers) -> None:
    """B had a little work all along while A flooded: when B floods too, the split is fair at once, not B's
    for as long as A had been working."""
    lab.flow("a", "f", step_ms=10)
    lab.flow("b", "light", step_ms=2)
    lab.flow("b", "flood", step_ms=10)
    lab.send("a", "f", 20_000)
    workers(WORKERS, FairnessConfig(credit_ms=200))
    steady(lab, "b", "light", every_s=0.02, duration_s=3.0)
    lab.send("b", "flood", 20_000)
    arrived = time.time()
    time.sleep(2.0)
    window = (arrived + 0.3, time.time())
    used = [lab.work_ms("a", *window), lab.work_ms("b", *window)]
    assert jain(used) >= 0.95, f"worker ms a/b after b flooded: {used[0]:.0f}/{used[1]:.0f}"
