"""Fused steps: cheap built-in steps run in the commit of the step before them, with unchanged guarantees."""

from __future__ import annotations

from runtime.bus.keys import TenantKeys
from tests.runtime.conftest import LINEAR, START, node


def test_a_chain_of_fusible_steps_is_one_commit(harness) -> None:
    version = harness.publish(*LINEAR)
    worker = harness.worker()
    finished = harness.run_to_end(version, {"price": 2, "qty": 3})
    assert finished["status"] == "succeeded"
    assert worker.stats.committed == 1  # one delivered message: the trigger; the rest ran in its commit
    steps = harness.step_events(finished["run"])
    assert [(e["step"], e["status"]) for e in steps] == [
        ("start", "succeeded"),
        ("shape", "succeeded"),
        ("log", "succeeded"),
    ]
    assert steps[1]["out"] == [{"total": 6}]
    assert len({e["mid"] for e in steps}) == 3


def test_without_fusion_every_step_is_delivered(harness) -> None:
    version = harness.publish(*LINEAR)
    worker = harness.worker(fuse_limit=0)
    assert harness.run_to_end(version, {"price": 2, "qty": 3})["status"] == "succeeded"
    assert worker.stats.committed == 3


def test_the_fuse_limit_sends_the_rest_through_the_stream(harness) -> None:
    version = harness.publish(
        [START, node("each", "split", "split", fields={"path": "items"}), node("out", "log", "log")],
        [{"source": "start", "target": "each"}, {"source": "each", "target": "out"}],
    )
    worker = harness.worker(fuse_limit=5)
    finished = harness.run_to_end(version, {"items": list(range(20))})
    assert finished["status"] == "succeeded"
    outs = harness.step_events(finished["run"], "out")
    assert sorted(e["in"] for e in outs) == list(range(20))
    # start + (each + 4 outs fused) in one commit; the other 16 outputs delivered one by one.
    assert worker.stats.committed == 17
    assert harness.bus.backlog(harness.tenant) == 0


def test_a_fused_step_that_fails_is_retried_alone(harness) -> None:
    version = harness.publish(
        [
            START,
            node("shape", "jsonata", "transform", fields={"expression": "n + 1"}),
            node("fragile", "flaky", "fragile", settings={"retry": {"base_delay_s": 0.01}}),
            node("log", "log", "log"),
        ],
        [
            {"source": "start", "target": "shape"},
            {"source": "shape", "target": "fragile"},
            {"source": "fragile", "target": "log"},
        ],
    )
    finished = harness.run_to_end(version, {"n": 1})
    assert finished["status"] == "succeeded"
    run = finished["run"]
    assert [(e["step"], e["attempt"], e["status"]) for e in harness.step_events(run)] == [
        ("start", 1, "succeeded"),
        ("shape", 1, "succeeded"),
        ("fragile", 1, "retrying"),
        ("fragile", 2, "succeeded"),
        ("log", 1, "succeeded"),
    ]
    assert harness.step_events(run, "log")[0]["in"] == 2


def test_a_large_body_of_a_fused_step_that_retries_is_stored_aside(harness) -> None:
    harness.bus.inline_body_limit = 1000
    version = harness.publish(
        [
            START,
            node("fragile", "flaky", "fragile", settings={"retry": {"base_delay_s": 0.01}}),
            node("log", "log", "log"),
        ],
        [{"source": "start", "target": "fragile"}, {"source": "fragile", "target": "log"}],
    )
    big = {"text": "x" * 5000}
    finished = harness.run_to_end(version, big)
    assert finished["status"] == "succeeded"
    assert harness.step_events(finished["run"], "log")[0]["in"] == big
    assert not harness.bus.redis.keys(TenantKeys(harness.tenant).body("*"))


def test_a_fused_step_that_dies_leaves_the_rest_committed(harness) -> None:
    version = harness.publish(
        [
            START,
            node("each", "split", "split", fields={"path": "items"}),
            node("num", "jsonata", "transform", fields={"expression": "$number(v)"}),
        ],
        [{"source": "start", "target": "each"}, {"source": "each", "target": "num"}],
    )
    finished = harness.run_to_end(version, {"items": [{"v": "1"}, {"v": "x"}, {"v": "3"}]})
    assert finished["status"] == "partially_failed"
    run = finished["run"]
    assert sorted(
        o for e in harness.step_events(run, "num") if e["status"] == "succeeded" for o in e["out"]
    ) == [1, 3]
    (letter,) = harness.bus.dead_letters(harness.tenant)
    assert letter.envelope.step == "num"
    assert letter.body == {"data": {"v": "x"}, "metadata": {}, "attachments": []} or letter.body["data"] == {
        "v": "x"
    }


def test_steps_after_a_step_with_io_are_not_fused(harness) -> None:
    """A crash in a fused step must never repeat the I/O of the step before it: its result is committed first."""
    version = harness.publish(
        [
            START,
            node("call", "flaky", "call", fields={"fail_times": 0}),
            node("shape", "jsonata", "transform", fields={"expression": "n"}),
        ],
        [{"source": "start", "target": "call"}, {"source": "call", "target": "shape"}],
    )
    worker = harness.worker()
    assert harness.run_to_end(version, {"n": 1})["status"] == "succeeded"
    # start (with nothing fused after it but the non-fusible call) | call | shape: three commits.
    assert worker.stats.committed == 3
