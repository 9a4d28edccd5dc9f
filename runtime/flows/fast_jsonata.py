"""A fast path for the simple JSONata expressions most flows use: field paths, object and array constructors,
arithmetic, comparisons, boolean logic, conditionals, string concatenation and a few string functions.

jsonata-python interprets its syntax tree with a general (and slow) evaluator: ~50 us for a four-field object.
Here the same tree is turned once into nested Python closures. The closures implement only the common,
unambiguous cases; whenever a value falls outside them (an array in a path, which JSONata maps over; a type
error; a float to format) they raise `Unsupported` and the caller evaluates with jsonata-python instead, so
results and error messages are JSONata's own. Expressions using anything else are not compiled at all.
tests/runtime/flows/test_fast_jsonata.py checks both paths agree over a corpus of expressions and inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Evaluator = Callable[[Any], Any]


class Unsupported(Exception):
    """This value (or expression) is outside the fast path: evaluate with jsonata-python."""


class _Undefined:
    __slots__ = ()

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED = _Undefined()
_NUMBER = (int, float)


# jsonata-python computes with floats: integers beyond 2**53 lose precision there, and integers from 1e15 on
# are rendered in exponent form by $string. Values that large are left to it.
_EXACT_INT = 2**53
_PLAIN_INT = 10**15


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        if -_EXACT_INT < value < _EXACT_INT:
            return True
        raise Unsupported
    return isinstance(value, float)


def _number_result(value: float | int) -> float | int:
    # JSONata (as jsonata-python implements it) gives integral arithmetic results as integers.
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise Unsupported
        if value.is_integer():
            return int(value)
    return value


def _boolean(value: Any) -> bool:
    """JSONata's boolean cast, for the scalar values the fast path handles."""
    if value is UNDEFINED or value is None:
        return False
    if isinstance(value, bool):
        return value
    if _is_number(value):
        return value != 0
    if isinstance(value, str):
        return value != ""
    raise Unsupported  # arrays and objects have their own rules


def _string(value: Any) -> str:
    """$string for the values whose JSONata rendering is unambiguous."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and -_PLAIN_INT < value < _PLAIN_INT:
        return str(value)
    raise Unsupported  # large integers, floats, null, arrays and objects


def _path(names: tuple[str, ...]) -> Evaluator:
    def evaluate(data: Any) -> Any:
        value = data
        for name in names:
            if isinstance(value, dict):
                value = value.get(name, UNDEFINED)
            elif isinstance(value, list):
                raise Unsupported  # JSONata maps a path over arrays and flattens: leave it to jsonata
            else:
                return UNDEFINED
        if isinstance(value, list):
            raise Unsupported
        return value

    return evaluate


def _arithmetic(op: str, lhs: Evaluator, rhs: Evaluator) -> Evaluator:
    def evaluate(data: Any) -> Any:
        left, right = lhs(data), rhs(data)
        if left is UNDEFINED or right is UNDEFINED:
            if (left is UNDEFINED or _is_number(left)) and (right is UNDEFINED or _is_number(right)):
                return UNDEFINED
            raise Unsupported
        if not (_is_number(left) and _is_number(right)):
            raise Unsupported
        if op == "+":
            return _number_result(left + right)
        if op == "-":
            return _number_result(left - right)
        if op == "*":
            return _number_result(left * right)
        if right == 0:
            raise Unsupported
        return _number_result(left / right)

    return evaluate


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | bool) or _is_number(value)


def _equality(op: str, lhs: Evaluator, rhs: Evaluator) -> Evaluator:
    def evaluate(data: Any) -> Any:
        left, right = lhs(data), rhs(data)
        if left is UNDEFINED or right is UNDEFINED:
            return False
        if not (_scalar(left) and _scalar(right)) or isinstance(left, bool) != isinstance(right, bool):
            raise Unsupported
        equal = left == right
        return equal if op == "=" else not equal

    return evaluate


def _ordering(op: str, lhs: Evaluator, rhs: Evaluator) -> Evaluator:
    def evaluate(data: Any) -> Any:
        left, right = lhs(data), rhs(data)
        comparable = (_is_number(left) and _is_number(right)) or (
            isinstance(left, str) and isinstance(right, str)
        )
        if not comparable:
            undefined = left is UNDEFINED or right is UNDEFINED
            if undefined and all(
                v is UNDEFINED or _is_number(v) or isinstance(v, str) for v in (left, right)
            ):
                return UNDEFINED
            raise Unsupported
        if op == "<":
            return left < right
        if op == "<=":
            return left <= right
        if op == ">":
            return left > right
        return left >= right

    return evaluate


def _logic(op: str, lhs: Evaluator, rhs: Evaluator) -> Evaluator:
    def evaluate(data: Any) -> Any:
        left = _boolean(lhs(data))
        if op == "and":
            return left and _boolean(rhs(data))
        return left or _boolean(rhs(data))

    return evaluate


def _concat(lhs: Evaluator, rhs: Evaluator) -> Evaluator:
    def evaluate(data: Any) -> Any:
        left, right = lhs(data), rhs(data)
        return ("" if left is UNDEFINED else _string(left)) + ("" if right is UNDEFINED else _string(right))

    return evaluate


def _object(pairs: list[tuple[str, Evaluator]]) -> Evaluator:
    def evaluate(data: Any) -> Any:
        if isinstance(data, list):
            raise Unsupported  # an object constructor over an array groups its items
        result = {}
        for key, value_of in pairs:
            value = value_of(data)
            if value is not UNDEFINED:
                result[key] = value
        return result

    return evaluate


def _array(items: list[Evaluator]) -> Evaluator:
    def evaluate(data: Any) -> Any:
        result = []
        for item in items:
            value = item(data)
            if isinstance(value, list):
                raise Unsupported  # array constructors flatten sequences
            if value is not UNDEFINED:
                result.append(value)
        return result

    return evaluate


def _condition(test: Evaluator, then: Evaluator, otherwise: Evaluator | None) -> Evaluator:
    def evaluate(data: Any) -> Any:
        if _boolean(test(data)):
            return then(data)
        return otherwise(data) if otherwise is not None else UNDEFINED

    return evaluate


def _negate(operand: Evaluator) -> Evaluator:
    def evaluate(data: Any) -> Any:
        value = operand(data)
        if value is UNDEFINED:
            return UNDEFINED
        if not _is_number(value):
            raise Unsupported
        return _number_result(-value)

    return evaluate


def _text_function(transform: Callable[[str], Any]) -> Callable[[Evaluator], Evaluator]:
    def build(argument: Evaluator) -> Evaluator:
        def evaluate(data: Any) -> Any:
            value = argument(data)
            if value is UNDEFINED:
                return UNDEFINED
            if not isinstance(value, str):
                raise Unsupported
            return transform(value)

        return evaluate

    return build


def _exists(argument: Evaluator) -> Evaluator:
    return lambda data: argument(data) is not UNDEFINED


def _not(argument: Evaluator) -> Evaluator:
    def evaluate(data: Any) -> Any:
        value = argument(data)
        return UNDEFINED if value is UNDEFINED else not _boolean(value)

    return evaluate


def _string_function(argument: Evaluator) -> Evaluator:
    def evaluate(data: Any) -> Any:
        value = argument(data)
        return UNDEFINED if value is UNDEFINED else _string(value)

    return evaluate


def _merge(argument: Evaluator) -> Evaluator:
    """$merge of objects (the common "add a field" mapping); anything else defers to jsonata-python."""

    def evaluate(data: Any) -> Any:
        value = argument(data)
        if value is UNDEFINED:
            return UNDEFINED
        merged: dict[str, Any] = {}
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, dict):
                raise Unsupported
            merged.update(item)
        return merged

    return evaluate


def _context(data: Any) -> Any:
    if isinstance(data, list):
        raise Unsupported
    return data


_FUNCTIONS: dict[str, Callable[[Evaluator], Evaluator]] = {
    "uppercase": _text_function(str.upper),
    "lowercase": _text_function(str.casefold),  # as jsonata-python does ('ß' -> 'ss')
    "length": _text_function(len),
    "exists": _exists,
    "not": _not,
    "string": _string_function,
    "merge": _merge,
}


class _NotCompilable(Exception):
    pass


def _constant(value: Any) -> Evaluator:
    return lambda _data: value


def _build(node: Any) -> Evaluator:
    kind, value = node.type, node.value
    if any(
        getattr(node, a, None)
        for a in ("predicate", "stages", "group", "focus", "index", "tuple", "keep_array")
    ):
        raise _NotCompilable
    if kind in ("string", "value") or (kind == "number" and not isinstance(value, bool)):
        return _constant(value)
    if kind == "path":
        steps = node.steps or []
        if (
            not steps
            or any(
                s.type != "name"
                or any(
                    getattr(s, a, None)
                    for a in ("predicate", "stages", "group", "focus", "index", "tuple", "keep_array")
                )
                for s in steps
            )
            or getattr(node, "keep_singleton_array", False)
        ):
            raise _NotCompilable
        return _path(tuple(str(s.value) for s in steps))
    if kind == "name":
        return _path((str(value),))
    if kind == "variable" and value == "":
        return _context
    if kind == "binary":
        lhs, rhs = _build(node.lhs), _build(node.rhs)
        if value in ("+", "-", "*", "/"):  # not %: jsonata-python truncates float operands
            return _arithmetic(value, lhs, rhs)
        if value in ("=", "!="):
            return _equality(value, lhs, rhs)
        if value in ("<", "<=", ">", ">="):
            return _ordering(value, lhs, rhs)
        if value in ("and", "or"):
            return _logic(value, lhs, rhs)
        if value == "&":
            return _concat(lhs, rhs)
        raise _NotCompilable
    if kind == "unary":
        if value == "{":
            pairs = []
            for key, item in node.lhs_object or []:
                if key.type != "string" or any(key.value == k for k, _ in pairs):
                    raise _NotCompilable  # computed or duplicate keys: JSONata's rules
                pairs.append((key.value, _build(item)))
            return _object(pairs)
        if value == "[" and not getattr(node, "consarray", False):
            return _array([_build(item) for item in node.expressions or []])
        if value == "-":
            return _negate(_build(node.expression))
        raise _NotCompilable
    if kind == "condition":
        otherwise = _build(node._else) if node._else is not None else None
        return _condition(_build(node.condition), _build(node.then), otherwise)
    if kind == "block" and len(node.expressions or []) == 1:
        return _build(node.expressions[0])
    if kind == "function":
        procedure = node.procedure
        arguments = node.arguments or []
        if procedure is None or procedure.type != "variable" or len(arguments) != 1:
            raise _NotCompilable
        factory = _FUNCTIONS.get(procedure.value)
        if factory is None:
            raise _NotCompilable
        return factory(_build(arguments[0]))
    raise _NotCompilable


def compile_fast(ast: Any) -> Evaluator | None:
    """Closures for the expression's syntax tree, or None when it uses anything outside the fast path."""
    try:
        body = _build(ast)
    except (_NotCompilable, AttributeError, TypeError):
        return None

    def evaluate(data: Any) -> Any:
        if data is None:
            raise Unsupported  # jsonata treats a null input as no input at all
        result = body(data)
        return None if result is UNDEFINED else result

    return evaluate
