"""JSONata expressions, compiled once per flow version and reused (compiling per message costs ~3x more).

Simple expressions also get a fast path (runtime/flows/fast_jsonata.py) that computes the same result
~10x sooner and hands anything unusual back to jsonata-python.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import jsonata

from runtime.flows.fast_jsonata import Evaluator, Unsupported, compile_fast


class ExpressionError(ValueError):
    """An expression does not parse; the message says where."""


@dataclass(frozen=True)
class Expression:
    source: str
    full: jsonata.Jsonata
    fast: Evaluator | None

    def evaluate(self, data: Any) -> Any:
        if self.fast is not None:
            try:
                return self.fast(data)
            except Unsupported:
                pass
        return self.full.evaluate(data)


@functools.lru_cache(maxsize=4096)
def compile_expression(source: str) -> Expression:
    try:
        full = jsonata.Jsonata(source)
    except Exception as exc:  # jsonata raises its own JException and sometimes plain errors
        raise ExpressionError(str(exc)) from None
    return Expression(source, full, compile_fast(full.ast))


def evaluate(expression: Expression, data: Any) -> Any:
    return expression.evaluate(data)


def truthy(value: Any) -> bool:
    """JSONata's boolean cast: empty arrays, empty strings, 0, null and false are false."""
    if isinstance(value, list):
        return any(truthy(v) for v in value)
    if isinstance(value, dict):
        return bool(value)
    return bool(value)
