"""The JSON log format: one object per line with the service and the ids a line is about."""

from __future__ import annotations

import logging

import orjson

from app.log_format import JsonFormatter
from runtime.log_context import bound, current


def _record(message: str, **extra) -> logging.LogRecord:
    record = logging.LogRecord("hub.test", logging.WARNING, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    return record


def test_a_line_carries_the_ids_bound_while_a_step_runs() -> None:
    formatter = JsonFormatter("worker")
    with bound(tenant="t1", flow="f1", run="r1", step="call"):
        line = orjson.loads(formatter.format(_record("slow answer")))
    assert line["service"] == "worker" and line["level"] == "warning" and line["message"] == "slow answer"
    assert (line["tenant"], line["flow"], line["run"], line["step"]) == ("t1", "f1", "r1", "call")
    assert current() == {}  # unbound when the step is done
    outside = orjson.loads(formatter.format(_record("idle")))
    assert "run" not in outside and "tenant" not in outside


def test_ids_given_with_the_call_and_exceptions_are_kept() -> None:
    formatter = JsonFormatter("recorder")
    try:
        raise ValueError("bad row")
    except ValueError:
        import sys

        record = _record("write failed", run="r9", tenant="t9")
        record.exc_info = sys.exc_info()
    line = orjson.loads(formatter.format(record))
    assert (line["run"], line["tenant"]) == ("r9", "t9")
    assert "ValueError: bad row" in line["exception"]


def test_nested_bindings_add_and_restore() -> None:
    with bound(tenant="t1"):
        with bound(run="r1", step=None):
            assert current() == {"tenant": "t1", "run": "r1"}
        assert current() == {"tenant": "t1"}
