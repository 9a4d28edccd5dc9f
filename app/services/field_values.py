"""Checking what a person entered in a form generated from a component's fields, before it is saved."""

from __future__ import annotations

from typing import Any

import orjson

from runtime.components.descriptor import FieldDef
from runtime.flows.expressions import ExpressionError, compile_expression

EMPTY = (None, "", [], {})


def field_errors(fields: list[FieldDef], values: dict[str, Any]) -> dict[str, str]:
    """Field name -> what is wrong with its value; empty when the values can be saved."""
    errors: dict[str, str] = {}
    for field in fields:
        value = values.get(field.name)
        if isinstance(value, str):
            value = value.strip()
        if value in EMPTY or (field.kind == "checkbox" and value in ("off", False)):
            if field.required and field.kind != "checkbox":
                errors[field.name] = f"{field.label} is required."
            continue
        if field.kind == "json" and isinstance(value, str):
            try:
                orjson.loads(value)
            except orjson.JSONDecodeError as exc:
                errors[field.name] = f"Not valid JSON: {exc}"
        elif field.kind == "jsonata" and isinstance(value, str):
            try:
                compile_expression(value)
            except ExpressionError as exc:
                errors[field.name] = f"Not a valid JSONata expression: {exc}"
        elif field.options is not None and field.kind in ("select", "multiselect"):
            chosen = value if isinstance(value, list) else [value]
            unknown = [str(v) for v in chosen if str(v) not in field.options]
            if unknown:
                errors[field.name] = f"Not one of the choices: {', '.join(unknown)}."
    return errors


def cleaned_values(
    fields: list[FieldDef], form: dict[str, Any], *, parse_json: bool = True
) -> dict[str, Any]:
    """What is kept of a submitted form (after `field_errors` found nothing): the declared fields only, trimmed,
    empty ones left out, a checkbox as a boolean and (with `parse_json`) a JSON field as the value it spells."""
    values: dict[str, Any] = {}
    for field in fields:
        value = form.get(field.name)
        if field.kind == "checkbox":
            values[field.name] = value in (True, "on", "true", "1")
            continue
        if isinstance(value, str):
            value = value.strip()
        if value in EMPTY:
            continue
        if parse_json and field.kind == "json" and isinstance(value, str):
            value = orjson.loads(value)
        values[field.name] = value
    return values
