"""Choices of a dynamic select: what a component's model function returns, as value -> label.

elastic.io components return an object {value: label}; others a list of values or of {value, label} (or
{id, name}) objects. Anything else is the component's mistake, reported as such."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_OPTIONS = 5000


class OptionsError(ValueError):
    """The choices could not be had: the message says why, for the person choosing."""


def normalize_options(raw: Any) -> dict[str, str]:
    if isinstance(raw, Mapping):
        pairs = [(str(k), _label(v)) for k, v in raw.items()]
    elif isinstance(raw, list):
        pairs = [_pair(item) for item in raw]
    else:
        raise OptionsError(f"the component's model returned {type(raw).__name__}, not an object or a list")
    if len(pairs) > MAX_OPTIONS:
        raise OptionsError(f"the component offered {len(pairs)} choices; at most {MAX_OPTIONS} can be shown")
    return dict(pairs)


def _label(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _pair(item: Any) -> tuple[str, str]:
    if isinstance(item, Mapping):
        value = item.get("value", item.get("id"))
        if value is None:
            raise OptionsError("a choice the component returned has neither 'value' nor 'id'")
        return str(value), _label(item.get("label", item.get("name", value)))
    if isinstance(item, (str, int, float)) and not isinstance(item, bool):
        return str(item), str(item)
    raise OptionsError(f"a choice the component returned is {type(item).__name__}, not a value or an object")
