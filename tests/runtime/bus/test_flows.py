"""Flows over the streams bus: outputs, routing, split and filter, retries, dead letters and replay."""

from __future__ import annotations

import pytest

from runtime.bus.keys import TenantKeys
from tests.runtime.conftest import START, node


@pytest.fixture(autouse=True, params=[0, 64], ids=["unfused", "fused"])
def _fusion(request, harness) -> None:
    """Every flow gives the same outputs and records whether its cheap steps share a commit or not."""
    harness.worker_defaults["fuse_limit"] = request.param


def _outputs(harness, run: str, step: str) -> list:
    return [out for e in harness.step_events(run, step) if e["status"] == "succeeded" for out in e["out"]]


def test_linear_flow(harness) -> None:
    version = harness.publish(
        [
            START,
            node("shape", "jsonata", "transform", fields={"expression": "{'total': price * qty}"}),
            node("log", "log", "log"),
        ],
        [{"source": "start", "target": "shape"}, {"source": "shape", "target": "log"}],
    )
    finished = harness.run_to_end(version, {"price": 2.5, "qty": 4})
    assert finished["status"] == "succeeded"
    run = finished["run"]
    assert _outputs(harness, run, "shape") == [{"total": 10}]
    assert [e["step"] for e in harness.step_events(run)] == ["start", "shape", "log"]
    assert all(e["attempt"] == 1 for e in harness.step_events(run))
    log_event = harness.step_events(run, "log")[0]
    assert log_event["logs"] == [["info", "{'total': 10}"]]
    # Nothing left behind: the run's bookkeeping is gone and the backlog is back to zero.
    tk = TenantKeys(harness.tenant)
    assert not harness.bus.redis.exists(tk.run(run))
    assert harness.bus.backlog(harness.tenant) == 0


def test_branching_by_conditions(harness) -> None:
    version = harness.publish(
        [START, node("big", "log", "log"), node("small", "log", "log"), node("all", "log", "log")],
        [
            {"source": "start", "target": "big", "condition": "amount >= 100"},
            {"source": "start", "target": "small", "condition": "amount < 100"},
            {"source": "start", "target": "all"},
        ],
    )
    big = harness.run_to_end(version, {"amount": 150})["run"]
    small = harness.run_to_end(version, {"amount": 5})["run"]
    assert sorted(e["step"] for e in harness.step_events(big)) == ["all", "big", "start"]
    assert sorted(e["step"] for e in harness.step_events(small)) == ["all", "small", "start"]


def test_split_then_filter(harness) -> None:
    version = harness.publish(
        [
            START,
            node("each", "split", "split", fields={"path": "orders"}),
            node("paid", "filter", "filter", fields={"condition": "paid = true"}),
            node("out", "jsonata", "transform", fields={"expression": "id"}),
        ],
        [
            {"source": "start", "target": "each"},
            {"source": "each", "target": "paid"},
            {"source": "paid", "target": "out"},
        ],
    )
    orders = [{"id": 1, "paid": True}, {"id": 2, "paid": False}, {"id": 3, "paid": True}]
    finished = harness.run_to_end(version, {"orders": orders})
    run = finished["run"]
    assert finished["status"] == "succeeded"
    assert len(harness.step_events(run, "paid")) == 3
    assert sorted(_outputs(harness, run, "out")) == [1, 3]
    # Each split output has its own stable message id.
    assert len({e["mid"] for e in harness.step_events(run, "paid")}) == 3


def test_retries_then_success(harness) -> None:
    version = harness.publish(
        [
            START,
            node(
                "call",
                "flaky",
                "call",
                fields={"fail_times": 2},
                settings={"retry": {"max_attempts": 3, "base_delay_s": 0.01}},
            ),
        ],
        [{"source": "start", "target": "call"}],
    )
    finished = harness.run_to_end(version, {"n": 1})
    assert finished["status"] == "succeeded"
    attempts = [(e["attempt"], e["status"]) for e in harness.step_events(finished["run"], "call")]
    assert attempts == [(1, "retrying"), (2, "retrying"), (3, "succeeded")]


def test_always_failing_step_dead_letters_then_replay_after_fix(harness) -> None:
    version = harness.publish(
        [START, node("call", "flaky", "broken"), node("after", "log", "log")],
        [{"source": "start", "target": "call"}, {"source": "call", "target": "after"}],
    )
    finished = harness.run_to_end(version, {"order": 7})
    assert finished["status"] == "failed"
    failed = harness.step_events(finished["run"], "call")
    assert [(e["status"], e["error"]) for e in failed] == [("dead", "the service is broken")]
    letters = harness.bus.dead_letters(harness.tenant)
    assert len(letters) == 1
    assert letters[0].error == "the service is broken"
    assert letters[0].envelope.step == "call"

    harness.bus.redis.set("test:fixed", 1)
    replay = harness.bus.replay(harness.tenant, letters[0].entry_id)
    harness.drain(lambda: replay in harness.finished())
    assert harness.finished()[replay]["status"] == "succeeded"
    started = next(e for e in harness.events() if e["t"] == "run.started" and e["run"] == replay)
    assert started["replay_of"] == finished["run"]
    # Only the failed step onward ran again.
    assert [e["step"] for e in harness.step_events(replay)] == ["call", "after"]
    assert _outputs(harness, replay, "call") == [{"fixed": True, "order": 7}]
    assert harness.bus.dead_letters(harness.tenant) == []


def test_partially_failed_run(harness) -> None:
    version = harness.publish(
        [START, node("bad", "flaky", "broken"), node("good", "log", "log")],
        [{"source": "start", "target": "bad"}, {"source": "start", "target": "good"}],
    )
    assert harness.run_to_end(version, {})["status"] == "partially_failed"


def test_rebound_retries_later(harness, redis) -> None:
    from runtime.components.registry import spec_from_descriptor

    def wait_for_it(message, fields, context):
        if redis.incr(f"test:rebound:{context.message_id}") < 3:
            context.rebound("not ready", delay_s=0.01)
        return message

    harness.registry = harness.registry.with_components(
        spec_from_descriptor("patient", {"actions": {"wait": {"fields": {}}}}, {"wait": wait_for_it})
    )
    version = harness.publish([START, node("w", "patient", "wait")], [{"source": "start", "target": "w"}])
    finished = harness.run_to_end(version, {})
    assert finished["status"] == "succeeded"
    assert [e["status"] for e in harness.step_events(finished["run"], "w")] == [
        "rebound",
        "rebound",
        "succeeded",
    ]


def test_unpublished_version_dead_letters_with_a_clear_error(harness) -> None:
    run = harness.start("no-such-version", {})
    harness.drain(lambda: run in harness.finished())
    assert harness.finished()[run]["status"] == "failed"
    (letter,) = harness.bus.dead_letters(harness.tenant)
    assert "not published" in letter.error


@pytest.mark.parametrize("status_field", ["201", "abc"])
def test_reply_step(harness, status_field: str) -> None:
    version = harness.publish(
        [START, node("answer", "reply", "reply", fields={"status": status_field, "body": "{'hello': name}"})],
        [{"source": "start", "target": "answer"}],
    )
    finished = harness.run_to_end(version, {"name": "Ada"})
    replies = harness.bus.redis.lrange(TenantKeys(harness.tenant).reply(finished["run"]), 0, -1)
    if status_field == "201":
        import orjson

        assert [orjson.loads(r) for r in replies] == [
            {"status": 201, "headers": {}, "body": {"hello": "Ada"}}
        ]
    else:
        assert replies == []
        assert finished["status"] == "failed"


@pytest.mark.parametrize(("function", "expected"), [("all", ["big", "other"]), ("first", ["big"])])
def test_router_every_or_first_matching_branch(harness, function: str, expected: list[str]) -> None:
    version = harness.publish(
        [START, node("route", "router", function), node("big", "log", "log"), node("small", "log", "log"),
         node("other", "log", "log")],
        [
            {"source": "start", "target": "route"},
            {"source": "route", "target": "big", "condition": "amount >= 100"},
            {"source": "route", "target": "small", "condition": "amount < 10"},
            {"source": "route", "target": "other"},  # no condition: "else" in first-match mode
        ],
    )  # fmt: skip
    run = harness.run_to_end(version, {"amount": 150})["run"]
    assert (
        sorted(e["step"] for e in harness.step_events(run) if e["step"] not in ("start", "route")) == expected
    )
    run = harness.run_to_end(version, {"amount": 50})["run"]
    assert [e["step"] for e in harness.step_events(run) if e["step"] not in ("start", "route")] == ["other"]


def _aggregate_flow(harness, middle: dict) -> str:
    return harness.publish(
        [
            START,
            node("each", "split", "split", fields={"path": "items"}),
            middle,
            node("all", "aggregate", "aggregate"),
            node("out", "log", "log"),
        ],
        [
            {"source": "start", "target": "each"},
            {"source": "each", "target": middle["id"]},
            {"source": middle["id"], "target": "all"},
            {"source": "all", "target": "out"},
        ],
    )


def test_aggregate_puts_the_items_of_a_split_back_in_order(harness) -> None:
    version = _aggregate_flow(harness, node("times", "jsonata", "transform", fields={"expression": "v * 10"}))
    finished = harness.run_to_end(version, {"items": [{"v": i} for i in range(5)]})
    assert finished["status"] == "succeeded"
    run = finished["run"]
    assert [e["in"] for e in harness.step_events(run, "out")] == [[0, 10, 20, 30, 40]]
    assert len(harness.step_events(run, "all")) == 6  # five parts handed in, then the whole group once
    assert not harness.bus.redis.keys(TenantKeys(harness.tenant).aggregate("*", "*"))
    assert harness.bus.backlog(harness.tenant) == 0


def test_a_failed_item_holds_its_group_back(harness) -> None:
    version = _aggregate_flow(
        harness, node("num", "jsonata", "transform", fields={"expression": "$number(v)"})
    )
    finished = harness.run_to_end(version, {"items": [{"v": "1"}, {"v": "x"}, {"v": "3"}]})
    assert finished["status"] == "failed"  # nothing reached the end: the group is waiting for its failed item
    assert harness.step_events(finished["run"], "out") == []
    (letter,) = harness.bus.dead_letters(harness.tenant)
    assert letter.envelope.step == "num"


def test_aggregate_needs_a_split_before_it(harness) -> None:
    version = harness.publish(
        [START, node("all", "aggregate", "aggregate")], [{"source": "start", "target": "all"}]
    )
    assert harness.run_to_end(version, {"a": 1})["status"] == "failed"
    (letter,) = harness.bus.dead_letters(harness.tenant)
    assert "did not come from one" in letter.error


def _batch_flow(harness, **fields) -> str:
    return harness.publish(
        [START, node("group", "batch", "batch", fields=fields), node("out", "log", "log")],
        [{"source": "start", "target": "group"}, {"source": "group", "target": "out"}],
    )


def test_batch_collects_separate_runs_by_count(harness) -> None:
    version = _batch_flow(harness, size="3", window_s="0", value="n")
    runs = [harness.start(version, {"n": i}) for i in range(7)]
    harness.drain(lambda: all(run in harness.finished() for run in runs[:6]))
    # Two full batches went on, each in the run of the message that filled it; the others ended at the batch.
    outs = {run: [e["in"] for e in harness.step_events(run, "out")] for run in runs}
    assert outs[runs[2]] == [[0, 1, 2]] and outs[runs[5]] == [[3, 4, 5]]
    assert all(outs[run] == [] for run in runs if run not in (runs[2], runs[5]))
    assert all(harness.finished()[run]["status"] == "succeeded" for run in runs[:6])
    # The seventh waits for two more, with no time limit.
    tk = TenantKeys(harness.tenant)
    assert harness.bus.redis.lrange(tk.batch("flow1", "group"), 0, -1) == [b"6"]
    assert harness.finished()[runs[6]]["status"] == "succeeded"  # its message was handed in: its run is done
    assert harness.bus.backlog(harness.tenant) == 0


def test_batch_window_sends_what_arrived_in_the_first_run(harness) -> None:
    version = _batch_flow(harness, size="100", window_s="0.3")
    first, second = harness.start(version, {"a": 1}), harness.start(version, {"b": 2})
    harness.drain(lambda: second in harness.finished())
    assert first not in harness.finished()  # kept open by its window
    harness.drain(lambda: first in harness.finished())
    assert [e["in"] for e in harness.step_events(first, "out")] == [[{"a": 1}, {"b": 2}]]
    assert harness.finished()[first]["status"] == "succeeded"
    tk = TenantKeys(harness.tenant)
    assert not harness.bus.redis.exists(tk.batch("flow1", "group"), tk.batch_generation("flow1", "group"))
    # A new batch starts a new window.
    third = harness.start(version, {"c": 3})
    harness.drain(lambda: third in harness.finished())
    assert [e["in"] for e in harness.step_events(third, "out")] == [[{"c": 3}]]
    assert harness.bus.backlog(harness.tenant) == 0


def test_a_full_batch_leaves_nothing_for_its_window(harness) -> None:
    version = _batch_flow(harness, size="2", window_s="0.2")
    first, second = harness.start(version, {"a": 1}), harness.start(version, {"b": 2})
    harness.drain(lambda: first in harness.finished() and second in harness.finished())
    # Sent by count in the second run; the first run's window then found its batch gone and ended quietly.
    assert [e["in"] for e in harness.step_events(second, "out")] == [[{"a": 1}, {"b": 2}]]
    assert harness.step_events(first, "out") == []
    assert harness.finished()[first]["status"] == "succeeded"
    assert harness.bus.backlog(harness.tenant) == 0


@pytest.mark.parametrize(("fields", "error"), [
    ({"size": "0"}, "batch size must be a whole number from 1 to 10000"),
    ({"size": "2.5"}, "batch size must be a whole number"),
    ({"size": "lots"}, "batch size 'lots' is not a number"),
    ({"window_s": "-1"}, "batch window must be between 0 (none) and 604800 seconds"),
])  # fmt: skip
def test_batch_settings_are_checked(harness, fields, error) -> None:
    version = _batch_flow(harness, **fields)
    assert harness.run_to_end(version, {"a": 1})["status"] == "failed"
    (letter,) = harness.bus.dead_letters(harness.tenant)
    assert error in letter.error
