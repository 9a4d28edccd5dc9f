"""Bus mechanics: bodies stored aside, backlog quota, safe trimming, duplicate commits, snapshots, delays."""

from __future__ import annotations

import time

import pytest

from runtime.bus import keys
from runtime.bus.keys import TenantKeys
from runtime.bus.streams import BacklogFullError, StreamsBus
from runtime.components.registry import spec_from_descriptor
from tests.runtime.conftest import START, node


def test_large_bodies_travel_by_reference_and_are_cleaned_up(harness) -> None:
    harness.bus.inline_body_limit = 1024
    version = harness.publish(
        [
            START,
            node("shape", "jsonata", "transform", fields={"expression": "$"}),
            node("log", "log", "log", fields={"message": "'ok'"}),
        ],
        [{"source": "start", "target": "shape"}, {"source": "shape", "target": "log"}],
    )
    big = {"blob": "x" * 5000}
    run = harness.start(version, big)
    tk = TenantKeys(harness.tenant)
    raw = harness.bus.redis.xrange(tk.queue("flow1"))[-1][1][b"m"]
    assert b"xxxx" not in raw and b'"br"' in raw  # the stream entry carries only the reference
    harness.drain(lambda: run in harness.finished())
    assert harness.finished()[run]["status"] == "succeeded"
    assert harness.step_events(run, "shape")[0]["out"] == [big]
    assert list(harness.bus.redis.scan_iter(match=tk.body("*"))) == []


def test_backlog_quota_pushes_back_and_writes_nothing(redis) -> None:
    bus = StreamsBus(redis, max_backlog=3)
    for _ in range(3):
        bus.start_run("quota", "f", "v", "start", {"data": 1})
    tk = TenantKeys("quota")
    length = redis.xlen(tk.queue("f"))
    with pytest.raises(BacklogFullError, match="backlog quota of 3 messages reached"):
        bus.start_run("quota", "f", "v", "start", {"data": 1}, run_id="refused")
    assert redis.xlen(tk.queue("f")) == length
    assert not redis.exists(tk.run("refused"))
    assert bus.backlog("quota") == 3


def test_trim_keeps_pending_and_undelivered_entries(redis) -> None:
    bus = StreamsBus(redis)
    tenant = "trim"
    for i in range(10):
        bus.start_run(tenant, "f", "v", "start", {"data": i})
    tk = TenantKeys(tenant)
    delivered = bus.read_queue("c1", tk.queue("f"), 4)
    # Acknowledge the first two only: two stay pending, six were never delivered.
    redis.xack(tk.queue("f"), keys.STEP_GROUP, delivered[0].entry_id, delivered[1].entry_id)
    bus.trim(tk.queue("f"))
    remaining = [e[0].decode() for e in redis.xrange(tk.queue("f"))]
    assert delivered[0].entry_id not in remaining and delivered[1].entry_id not in remaining
    assert delivered[2].entry_id in remaining and delivered[3].entry_id in remaining
    assert len(remaining) == 8


def test_a_message_committed_twice_takes_effect_once(harness) -> None:
    """Worker A is slow, B reclaims and commits; A's late commit must change nothing."""
    version = harness.publish([START, node("log", "log", "log")], [{"source": "start", "target": "log"}])
    run = harness.start(version, {"x": 1})
    slow = harness.worker("slow", visibility_timeout_ms=10)
    fast = harness.worker("fast", visibility_timeout_ms=10)
    queue = TenantKeys(harness.tenant).queue("flow1")
    deliveries = harness.bus.read_queue("slow", queue, 10)
    time.sleep(0.02)
    reclaimed = harness.bus.reclaim(queue, "fast", min_idle_ms=10)
    assert [d.entry_id for d in reclaimed] == [d.entry_id for d in deliveries]
    fast.process(reclaimed)
    slow.process(deliveries)
    harness.workers = [fast]
    harness.drain(lambda: run in harness.finished())
    starts = [e for e in harness.step_events(run, "start") if e["status"] == "succeeded"]
    assert len(starts) == 1  # only the first commit's events exist
    assert len(harness.step_events(run, "log")) == 1
    assert harness.bus.backlog(harness.tenant) == 0


def test_snapshot_persists_between_runs(harness) -> None:
    def count(message, fields, context):
        context.snapshot["seen"] = context.snapshot.get("seen", 0) + 1
        return {"seen": context.snapshot["seen"]}

    harness.registry = harness.registry.with_components(
        spec_from_descriptor(
            "counter",
            {"triggers": {"poll": {"fields": {}, "x-hub": {"uses_snapshot": True}}}},
            {"poll": count},
        )
    )
    version = harness.publish(
        [node("start", "counter", "poll"), node("log", "log", "log")], [{"source": "start", "target": "log"}]
    )
    outputs = []
    for _ in range(3):
        finished = harness.run_to_end(version, None)
        outputs.append(harness.step_events(finished["run"], "start")[0]["out"])
    assert outputs == [[{"seen": 1}], [{"seen": 2}], [{"seen": 3}]]


def test_delay_step_holds_messages_without_blocking(harness) -> None:
    version = harness.publish(
        [START, node("wait", "delay", "delay", fields={"seconds": 0.3}), node("log", "log", "log")],
        [{"source": "start", "target": "wait"}, {"source": "wait", "target": "log"}],
    )
    slow = harness.start(version, {"n": 1})
    began = time.monotonic()
    harness.drain(lambda: slow in harness.finished())
    assert time.monotonic() - began >= 0.3
    assert harness.finished()[slow]["status"] == "succeeded"


def test_poison_message_that_kills_workers_is_dead_lettered(harness) -> None:
    version = harness.publish([START, node("log", "log", "log")], [{"source": "start", "target": "log"}])
    run = harness.start(version, {})
    worker = harness.worker("w", visibility_timeout_ms=1)
    # Simulate workers that took the message and died each time (never committing).
    queue = TenantKeys(harness.tenant).queue("flow1")
    for i in range(15):
        harness.bus.read_queue(f"dead-{i}", queue, 1) or harness.bus.reclaim(queue, f"dead-{i}", 0)
        time.sleep(0.002)
    harness.workers = [worker]
    harness.drain(lambda: run in harness.finished())
    assert harness.finished()[run]["status"] == "failed"
    (letter,) = harness.bus.dead_letters(harness.tenant)
    assert "crashed or hung" in letter.error


def test_trim_survives_pending_entries_acknowledged_meanwhile(redis, monkeypatch) -> None:
    """XINFO said 'pending', but the entries were acknowledged before XPENDING ran (a race with a commit)."""
    bus = StreamsBus(redis)
    bus.start_run("race", "f", "v", "start", {"data": 1})
    real = redis.xinfo_groups
    monkeypatch.setattr(redis, "xinfo_groups", lambda stream: [{**g, "pending": 1} for g in real(stream)])
    bus.trim(TenantKeys("race").queue("f"))  # must not raise


def test_a_change_inside_a_nested_snapshot_value_is_kept() -> None:
    from runtime.steps.context import StepContext
    from runtime.steps.executor import InlineExecutor, StepInvocation
    from runtime.steps.message import Message

    def remember(message, fields, context):
        context.snapshot.setdefault("seen", []).append(message.data)

    context = StepContext("t", "f", "r", "s", "m", 1, snapshot={"seen": [1]})
    invocation = StepInvocation("c", "f", {}, Message(data=2), context)
    result = InlineExecutor().execute(invocation, remember)
    assert result.snapshot == {"seen": [1, 2]}


def test_a_commit_for_several_tenants_survives_redis_forgetting_its_scripts(harness) -> None:
    """Redis restarted without its script cache: the pipelined commit loads the script and applies every batch."""
    from tests.runtime.conftest import LINEAR, Harness

    other = Harness(harness.bus, harness.registry)
    runs = []
    for h in (harness, other):
        version = h.publish(*LINEAR)
        runs.append((h, h.start(version, {"price": 2, "qty": 3})))
    worker = harness.worker()
    worker.housekeeping()  # both tenants known
    harness.bus.redis.script_flush()
    deadline = time.monotonic() + 10
    while not all(run in h.finished() for h, run in runs) and time.monotonic() < deadline:
        worker.run_once()
    assert [h.finished()[run]["status"] for h, run in runs] == ["succeeded", "succeeded"]


def test_a_tenants_own_backlog_quota_applies_to_every_run_start(redis) -> None:
    from runtime.coordinator.quotas import QuotaStore, TenantQuota

    bus = StreamsBus(redis, max_backlog=100)
    QuotaStore(redis).write("own", TenantQuota(max_backlog=2))
    for _ in range(2):
        bus.start_run("own", "f", "v", "start", {"data": 1})
    with pytest.raises(BacklogFullError, match="backlog quota of 2 messages reached"):
        bus.start_run("own", "f", "v", "start", {"data": 1})


def test_a_queue_retired_meanwhile_is_no_error(redis) -> None:
    """Another worker may retire an idle queue between this one listing the queues and reading one."""
    from runtime.coordinator.fair_queue import FairQueue

    bus = StreamsBus(redis)
    tk = TenantKeys("gone")
    queue = tk.queue("f")
    assert bus.reclaim(queue, "w", 0) == []  # no stream, no group: nothing pending there
    redis.sadd(tk.ready, queue)  # a mark left behind
    result = FairQueue(redis).take("w", ["gone"], {}, 10, 1)
    assert result.taken is None and not redis.sismember(tk.ready, queue)
