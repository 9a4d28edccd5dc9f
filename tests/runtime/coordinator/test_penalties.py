"""What the bad-citizen watch's penalties do to a flow's queue, and the strikes the runtime counts for it."""

from __future__ import annotations

import time

from runtime.bus.keys import TenantKeys
from runtime.coordinator import usage
from tests.runtime.conftest import START, node
from tests.runtime.coordinator.conftest import jain


def test_a_throttled_flow_gets_one_message_a_second(lab, workers) -> None:
    lab.flow("t", "slow", step_ms=1)
    lab.flow("t", "other", step_ms=1)
    tk = TenantKeys("t")
    lab.redis.hset(tk.penalties, tk.queue("slow"), "throttle")
    lab.send("t", "slow", 20)
    lab.send("t", "other", 20)
    workers(2)
    time.sleep(2.5)
    assert len(lab.latencies("t", "other")) == 20  # the tenant's other flow is not held back
    assert 2 <= len(lab.latencies("t", "slow")) <= 4


def test_a_flow_on_low_priority_gets_a_quarter_of_its_share(lab, workers) -> None:
    lab.flow("t", "low", step_ms=10)
    lab.flow("t", "normal", step_ms=10)
    tk = TenantKeys("t")
    lab.redis.hset(tk.penalties, tk.queue("low"), "low")
    lab.send("t", "low", 3_000)
    lab.send("t", "normal", 3_000)
    workers(2)
    began = time.time()
    time.sleep(3.0)
    window = (began + 1.0, time.time())  # the workers read penalties within their first housekeeping
    low, normal = lab.work_ms("t", *window, flow="low"), lab.work_ms("t", *window, flow="normal")
    assert 3.0 <= normal / low <= 5.5, f"normal/low {normal / low:.2f}"
    assert jain([low * 4, normal]) >= 0.95


def test_a_message_that_crashes_its_workers_counts_against_its_flow(harness) -> None:
    version = harness.publish([START, node("log", "log", "log")], [{"source": "start", "target": "log"}])
    run = harness.start(version, {})
    queue = TenantKeys(harness.tenant).queue("flow1")
    worker = harness.worker("w", visibility_timeout_ms=1)
    for i in range(15):  # workers that took the message and died each time
        harness.bus.read_queue(f"dead-{i}", queue, 1) or harness.bus.reclaim(queue, f"dead-{i}", 0)
        time.sleep(0.002)
    harness.workers = [worker]
    harness.drain(lambda: run in harness.finished())
    bucket = harness.bus.redis.hgetall(TenantKeys(harness.tenant).usage(usage.minute()))
    assert int(bucket[f"strike:crash:{queue}".encode()]) == 1


def test_a_batch_that_fails_before_its_commit_gives_its_lease_and_charge_back(harness, monkeypatch) -> None:
    import pytest
    import redis

    version = harness.publish([START, node("log", "log", "log")], [{"source": "start", "target": "log"}])
    harness.start(version, {})
    worker = harness.worker("w")
    worker.housekeeping()

    def lost(*args, **kwargs):
        raise redis.ConnectionError("Redis went away")

    monkeypatch.setattr(worker.bus, "commit", lost)
    tk = TenantKeys(harness.tenant)
    with pytest.raises(redis.ConnectionError):
        worker.run_once()
    assert harness.bus.redis.zcard(tk.leases) == 0
    # Where the take put the new queue (the credit below the lead) before charging it: the charge is back.
    assert harness.bus.redis.zscore(tk.queue_vtime, tk.queue("flow1")) == -worker.config.fairness.credit_ms


def test_a_commit_that_failed_in_redis_is_not_refunded_twice(harness, monkeypatch) -> None:
    """The settle rides in the commit's round trip: when a script in it fails, the settle was applied."""
    import pytest
    import redis

    version = harness.publish([START, node("log", "log", "log")], [{"source": "start", "target": "log"}])
    harness.start(version, {})
    worker = harness.worker("w")
    worker.housekeeping()
    real = worker.bus.commit

    def failing(batches, also=None):
        real(batches, also)
        raise redis.ResponseError("a script failed")

    monkeypatch.setattr(worker.bus, "commit", failing)
    tk = TenantKeys(harness.tenant)
    with pytest.raises(redis.ResponseError):
        worker.run_once()
    assert harness.bus.redis.zcard(tk.leases) == 0
    # Lifted to minus the credit, then charged what the step used: not minus what was charged up front again.
    assert harness.bus.redis.zscore(tk.queue_vtime, tk.queue("flow1")) > -worker.config.fairness.credit_ms


def test_a_read_error_other_than_a_retired_queue_is_not_swallowed(redis) -> None:
    import pytest

    from runtime.coordinator.fair_queue import FairQueue

    tk = TenantKeys("odd")
    redis.set(tk.queue("f"), "not a stream")
    redis.sadd(tk.ready, tk.queue("f"))
    with pytest.raises(Exception, match="WRONGTYPE"):
        FairQueue(redis).take("w", ["odd"], {}, 10, 1)
