"""The data-shaping built-ins' errors: what a person reads on the failed step."""

from __future__ import annotations

import pytest

from runtime.components.builtin.transform import filter_, transform
from runtime.steps.context import StepContext
from runtime.steps.errors import PermanentStepError
from runtime.steps.message import Message

CONTEXT = StepContext("t", "f", "r", "s", "msg-1", 1)


def test_a_failing_transform_says_so_once() -> None:
    with pytest.raises(PermanentStepError) as caught:
        transform(Message(data={"n": 1}), {"expression": "$error('too big')"}, CONTEXT)
    assert str(caught.value).startswith("the expression failed: ")
    assert "too big" in str(caught.value)


def test_a_transform_that_does_not_parse_says_so() -> None:
    with pytest.raises(PermanentStepError, match=r"^the expression does not parse: "):
        transform(Message(data={}), {"expression": "{'a': "}, CONTEXT)


def test_another_fields_expression_is_named() -> None:
    with pytest.raises(PermanentStepError, match=r"^the condition expression failed: "):
        filter_(Message(data={}), {"condition": "$error('nope')"}, CONTEXT)
