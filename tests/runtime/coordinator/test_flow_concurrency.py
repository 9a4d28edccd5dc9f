"""A flow's limit of runs in flight: beyond it a run waits for a place, is not started, or fails at once."""

from __future__ import annotations

import itertools
import time

import orjson
import pytest

from runtime.bus.keys import TenantKeys
from runtime.bus.streams import ConcurrencyLimitError, DeadLetterGoneError


def _finished(lab, tenant: str) -> dict[str, dict]:
    events = lab.redis.xrange(TenantKeys(tenant).events)
    return {e["run"]: e for _, f in events for e in orjson.loads(f[b"e"]) if e["t"] == "run.finished"}


def test_runs_beyond_the_limit_wait_and_the_limit_is_never_exceeded(lab, workers) -> None:
    lab.flow("t", "f", step_ms=30)
    lab.bus.set_flow_limit("t", "f", 2, "queue")
    lab.send("t", "f", 12)
    assert lab.redis.llen(TenantKeys("t").flow_waiting("f")) == 10
    workers(4)
    deadline = time.monotonic() + 20
    while len(_finished(lab, "t")) < 12 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(_finished(lab, "t")) == 12
    assert lab.peak["t"] == 2  # measured in the step: never more than two at once, and the two were used
    assert int(lab.redis.get(TenantKeys("t").flow_running("f"))) == 0
    assert lab.bus.backlog("t") == 0


def test_skip_refuses_a_run_beyond_the_limit_and_writes_nothing(lab, workers) -> None:
    lab.flow("t", "f", step_ms=1)
    lab.bus.set_flow_limit("t", "f", 1, "skip")
    lab.send("t", "f")
    with pytest.raises(ConcurrencyLimitError, match="the flow is at its limit of 1 runs at once"):
        lab.bus.start_run("t", "f", lab.versions[("t", "f")], "work", {"data": {"sent": 0}})
    assert lab.bus.backlog("t") == 1
    workers(1)
    deadline = time.monotonic() + 10
    while not _finished(lab, "t") and time.monotonic() < deadline:
        time.sleep(0.02)
    lab.send("t", "f")  # the place is free again


def test_fail_records_the_run_as_failed_with_the_reason(lab) -> None:
    lab.flow("t", "f", step_ms=1)
    lab.bus.set_flow_limit("t", "f", 1, "fail")
    lab.send("t", "f")
    refused = lab.bus.start_run("t", "f", lab.versions[("t", "f")], "work", {"data": {"sent": 0}})
    finished = _finished(lab, "t")[refused]
    assert finished["status"] == "failed"
    assert finished["error"] == "the flow is at its limit of 1 runs at once"
    assert lab.bus.backlog("t") == 1  # only the first run waits in the queue


def test_lifting_the_limit_starts_the_waiting_runs(lab, workers) -> None:
    lab.flow("t", "f", step_ms=1)
    lab.bus.set_flow_limit("t", "f", 1, "queue")
    lab.send("t", "f", 5)
    lab.bus.set_flow_limit("t", "f", None)
    assert lab.redis.llen(TenantKeys("t").flow_waiting("f")) == 0
    workers(2)
    deadline = time.monotonic() + 10
    while len(_finished(lab, "t")) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(_finished(lab, "t")) == 5
    assert int(lab.redis.get(TenantKeys("t").flow_running("f"))) == 0


def test_a_changed_limit_applies_to_the_runs_waiting(lab, workers) -> None:
    lab.flow("t", "f", step_ms=100)
    lab.bus.set_flow_limit("t", "f", 1, "queue")
    lab.send("t", "f", 12)
    lab.bus.set_flow_limit("t", "f", 3, "queue")  # raised: two more start at once
    tk = TenantKeys("t")
    assert int(lab.redis.get(tk.flow_running("f"))) == 3
    assert lab.redis.llen(tk.flow_waiting("f")) == 9
    workers(4)
    lab.bus.set_flow_limit("t", "f", 1, "queue")
    lowered = time.time()  # lowered: the runs in flight finish, then one at a time
    deadline = time.monotonic() + 20
    while len(_finished(lab, "t")) < 12 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(_finished(lab, "t")) == 12
    assert lab.peak["t"] == 3
    late = sorted((e for e in lab.executions if e.begun > lowered + 0.15), key=lambda e: e.begun)
    assert len(late) >= 3, [
        (round(e.begun - lowered, 3), round(e.ended - lowered, 3)) for e in lab.executions
    ]
    assert all(a.ended <= b.begun + 0.005 for a, b in itertools.pairwise(late)), "more than one at a time"
    assert int(lab.redis.get(tk.flow_running("f"))) == 0


def test_a_replay_refused_as_gone_holds_no_place(lab) -> None:
    """Of two replays of one dead letter the second is refused: it must not keep a place of the flow."""
    lab.flow("t", "f", step_ms=1)
    lab.bus.set_flow_limit("t", "f", 1, "queue")
    tk = TenantKeys("t")
    with pytest.raises(DeadLetterGoneError):
        lab.bus.start_run(
            "t", "f", lab.versions[("t", "f")], "work", {"data": {"sent": 0}}, replay_dead_id="1-1"
        )
    assert int(lab.redis.get(tk.flow_running("f")) or 0) == 0
