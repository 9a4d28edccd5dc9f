"""The fields of a credential's form: generated from the kind's (or the component's) field definitions, with the
values that may be shown again filled in and the others empty behind a "saved" placeholder (write-only)."""

from __future__ import annotations

from typing import Any

import reflex as rx

from app.components.config_form import SELECT_STYLE, field_row, field_view
from runtime.components.descriptor import FieldDef
from runtime.steps.credentials import MASK


def credential_field(field: FieldDef, shown: str = "") -> dict[str, Any]:
    """`shown`: what the saved credential shows for the field (its value, the mask, or "" when empty)."""
    view = field_view(field)
    saved_secret = shown == MASK
    view["value"] = "" if saved_secret else shown
    view["placeholder"] = "saved — type to replace" if saved_secret else view["placeholder"]
    view["checked"] = shown == "on"
    return view


def _control(field: Any) -> rx.Component:
    name = field["name"].to(str)
    testid = "credential-field-" + name
    return rx.match(
        field["kind"],
        (
            "password",
            rx.input(
                name=name,
                type="password",
                auto_complete="new-password",
                placeholder=field["placeholder"],
                default_value=field["value"],
                width="100%",
                data_testid=testid,
            ),
        ),
        (
            "textarea",
            rx.text_area(
                name=name,
                placeholder=field["placeholder"],
                default_value=field["value"],
                width="100%",
                data_testid=testid,
            ),
        ),
        ("checkbox", rx.checkbox(name=name, default_checked=field["checked"].to(bool), data_testid=testid)),
        (
            "select",
            rx.el.select(
                rx.el.option("—", value=""),
                rx.foreach(field["options"].to(list[list[str]]), lambda o: rx.el.option(o[1], value=o[0])),
                name=name,
                default_value=field["value"],
                style=SELECT_STYLE,
                data_testid=testid,
            ),
        ),
        rx.input(
            name=name,
            placeholder=field["placeholder"],
            default_value=field["value"],
            width="100%",
            data_testid=testid,
        ),
    )


def credential_fields(fields: Any, errors: Any) -> rx.Component:
    """`fields`: a list var of `credential_field` dicts; `errors`: a dict var field name -> message."""
    return rx.foreach(fields, lambda field: field_row(field, _control(field), errors, field["name"].to(str)))
