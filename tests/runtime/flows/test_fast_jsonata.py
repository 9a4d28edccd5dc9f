"""The JSONata fast path gives exactly jsonata-python's results (same values, same JSON types) or defers to it."""

from __future__ import annotations

import jsonata
import orjson
import pytest

from runtime.flows.expressions import compile_expression
from runtime.flows.fast_jsonata import Unsupported, compile_fast

INPUTS = [
    {"id": 1, "name": "widget", "price": 2.5, "qty": 4, "paid": True, "note": None, "tags": ["a", "b"]},
    {"id": 2, "name": "", "price": 0, "qty": -3, "paid": False, "customer": {"name": "Ada", "age": 36}},
    {"id": "3", "name": "Öl", "price": 1.1, "qty": 3, "customer": {"name": None}, "items": [{"v": 1}]},
    {"price": 7, "qty": 2.0, "customer": "not an object"},
    {"name": "Straße ΑΣ ﬁ", "big": 1700000000000000, "huge": 9007199254740993, "price": 1e300, "qty": 1e300},
    {},
    [1, 2, 3],
    [{"name": "a"}, {"name": "b"}],
    "text",
    5,
    None,
]

EXPRESSIONS = [
    # the benchmark's and the tests' expressions
    "{'id': id, 'name': $uppercase(name), 'total': price * qty}",
    "{'total': price * qty}",
    "n + 1",
    "id",
    "$merge([$, {'processed': true}])",
    "$merge([customer, {'id': id}])",
    "$merge(customer)",
    "$merge([tags, {'a': 1}])",
    "$merge([missing, {'a': 1}])",
    "$number(v)",
    # paths
    "name",
    "customer.name",
    "customer.age",
    "customer.name.first",
    "tags",
    "items",
    "items.v",
    "$",
    "missing",
    # arithmetic
    "price * qty",
    "price + qty",
    "price - qty",
    "price / qty",
    "qty / price",
    "price % qty",
    "-price",
    "-name",
    "price * 2",
    "qty / 0",
    "price + missing",
    "name + 1",
    "paid + 1",
    "1.5 * 2",
    "0.1 + 0.2",
    # comparisons and logic
    "price > 2",
    "price >= qty",
    "qty < 0",
    "name <= 'x'",
    "name > price",
    "missing > 1",
    "price = 2.5",
    "id = 1",
    "id = '3'",
    "paid = true",
    "note = null",
    "missing = 1",
    "missing != 1",
    "name != ''",
    "paid = 1",
    "tags = 'a'",
    "paid and qty > 0",
    "paid or missing",
    "name and price",
    "customer and paid",
    "amount >= 100",
    "paid = true",
    # strings
    "name & '-' & id",
    "name & price",
    "name & missing",
    "$uppercase(name)",
    "$lowercase(customer.name)",
    "$length(name)",
    "$length(price)",
    "$exists(note)",
    "$exists(missing)",
    "$not(paid)",
    "$not(missing)",
    "$string(id)",
    "$string(paid)",
    "$string(price)",
    # constructors and conditionals
    "{'a': missing, 'b': note, 'c': [id, missing, name]}",
    "[price, qty]",
    "[tags, id]",
    "{'nested': {'n': customer.name}}",
    "paid ? 'yes' : 'no'",
    "missing ? 1",
    "price > 2 ? price * 2 : price / 2",
    "(price)",
    "true",
    "false",
    "null",
    "'literal'",
    "42",
    "2.0",
    # found by review: casefolding, large integers, null input
    "$lowercase(name)",
    "$uppercase(name)",
    "$string(big)",
    "big & ''",
    "huge + 0",
    "huge = 9007199254740992",
    "big * 1",
    "price * qty",
    "{'a': $}",
    "[$]",
    "$exists($)",
    "$ = null",
    "$not($)",
    # outside the fast path (must still be right: jsonata evaluates them)
    "$sum(items.v)",
    "items[v > 0]",
    "tags[0]",
    "$count(tags)",
    "customer.*",
    "name ~> $uppercase()",
    "($x := price; $x * 2)",
    "{name: price}",
]


def _outcome(evaluate, data):
    try:
        return ("ok", orjson.dumps(evaluate(data), option=orjson.OPT_NON_STR_KEYS))
    except Exception as exc:
        return ("error", type(exc).__name__)


@pytest.mark.parametrize("source", EXPRESSIONS)
def test_fast_path_agrees_with_jsonata(source: str) -> None:
    expression = compile_expression(source)
    for data in INPUTS:
        expected = _outcome(jsonata.Jsonata(source).evaluate, data)
        got = _outcome(expression.evaluate, data)
        assert got == expected, f"{source!r} on {data!r}"


def test_the_common_expressions_are_compiled() -> None:
    compiled = [
        source for source in EXPRESSIONS[:70] if compile_fast(jsonata.Jsonata(source).ast) is not None
    ]
    # Everything before the "outside the fast path" block compiles, except $number and % (not in the subset).
    assert "$number(v)" not in compiled
    assert "price % qty" not in compiled
    assert len(compiled) >= 60


def test_unsupported_values_defer_to_jsonata() -> None:
    fast = compile_fast(jsonata.Jsonata("items.v").ast)
    assert fast is not None
    with pytest.raises(Unsupported):
        fast({"items": [{"v": 1}, {"v": 2}]})
    assert compile_expression("items.v").evaluate({"items": [{"v": 1}, {"v": 2}]}) == [1, 2]
