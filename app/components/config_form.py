"""A configuration form generated from a component's fields (descriptor `fields` with their viewClass).

Used by the catalog's preview, and by the designer's node panel and the credentials page. The fields come as
plain dicts (see `field_view`) so that a state can hold them."""

from __future__ import annotations

from typing import Any

import reflex as rx

from runtime.components.descriptor import FieldDef


def field_view(field: FieldDef) -> dict[str, Any]:
    """What the form needs of a field, as state-friendly data."""
    note = field.note or field.help
    if field.unknown_view:
        note = f"This field's view ({field.view_class}) is not known here: enter its value as text. {note}".strip()
    elif field.kind == "json":
        note = f"Entered as JSON ({field.view_class}). {note}".strip()
    elif field.options_function:
        note = f"Choices come from the component ({field.options_function}) once a credential is chosen. {note}".strip()
    return {
        "name": field.name,
        "label": field.label + (" *" if field.required else ""),
        "kind": "text" if field.options_function and field.kind in ("select", "multiselect") else field.kind,
        "placeholder": field.placeholder or field.prompt,
        "note": note,
        "options": [[value, label] for value, label in (field.options or {}).items()],
        "value": "",  # what the control shows at first (the designer fills in the step's saved value)
        "chosen": [],  # a multiple choice's ticked values (the designer's)
    }


SELECT_STYLE = {
    "width": "100%",
    "padding": "6px 8px",
    "border": "1px solid var(--gray-7)",
    "border_radius": "var(--radius-2)",
    "background": "var(--color-surface)",
}


def field_control(field: Any, on_expression: Any = None) -> rx.Component:
    """The input for one generated field, named by the field (a form's submit gives name -> value).
    `on_expression`: an event handler taking (field name, text), called as a JSONata field is typed in."""
    typing = {} if on_expression is None else {"on_change": on_expression(field["name"].to(str))}
    name = field["name"]
    value = field["value"].to(str)
    test_id = "field-" + field["name"].to(str)
    return rx.match(
        field["kind"],
        (
            "password",
            rx.input(
                name=name,
                type="password",
                placeholder=field["placeholder"],
                width="100%",
                default_value=value,
                data_testid=test_id,
            ),
        ),
        (
            "textarea",
            rx.text_area(
                name=name,
                placeholder=field["placeholder"],
                width="100%",
                default_value=value,
                data_testid=test_id,
            ),
        ),
        (
            "code",
            rx.text_area(
                name=name, font_family="monospace", width="100%", default_value=value, data_testid=test_id
            ),
        ),
        (
            "jsonata",
            rx.text_area(
                name=name,
                font_family="monospace",
                placeholder="JSONata",
                width="100%",
                default_value=value,
                data_testid=test_id,
                **typing,
            ),
        ),
        (
            "json",
            rx.text_area(
                name=name,
                font_family="monospace",
                placeholder="{}",
                width="100%",
                default_value=value,
                data_testid=test_id,
            ),
        ),
        ("checkbox", rx.checkbox(name=name, default_checked=field["value"].to(bool), data_testid=test_id)),
        (
            "select",
            rx.el.select(
                rx.el.option("—", value=""),
                rx.foreach(field["options"].to(list[list[str]]), lambda o: rx.el.option(o[1], value=o[0])),
                name=name,
                default_value=value,
                style=SELECT_STYLE,
                data_testid=test_id,
            ),
        ),
        (
            "multiselect",
            rx.el.select(
                rx.foreach(field["options"].to(list[list[str]]), lambda o: rx.el.option(o[1], value=o[0])),
                name=name,
                multiple=True,
                style=SELECT_STYLE,
            ),
        ),
        ("oauth", rx.text("Signed in with OAuth2 from the Credentials page.", size="2", color_scheme="gray")),
        rx.input(
            name=name,
            placeholder=field["placeholder"],
            width="100%",
            default_value=value,
            data_testid=test_id,
        ),
    )


def field_row(field: Any, control: rx.Component, errors: Any, error_key: Any) -> rx.Component:
    """One generated field: its label, its control, its note, and what is wrong with its value (errors[key])."""
    return rx.vstack(
        rx.text(field["label"], size="2", weight="medium"),
        control,
        rx.cond(field["note"] != "", rx.text(field["note"], size="1", color_scheme="gray")),
        rx.cond(
            errors.contains(error_key),
            rx.text(errors[error_key], size="1", color_scheme="red", data_testid="field-error"),
        ),
        spacing="1",
        width="100%",
    )


def config_form(
    form_id: Any, fields: Any, errors: Any, on_submit: Any, submit_label: str = "Check"
) -> rx.Component:
    """`form_id`: a string var naming the form; `fields`: a list var of `field_view` dicts; `errors`: a dict var
    "form_id/field name" -> message, shown under the field."""
    return rx.form(
        rx.vstack(
            rx.foreach(
                fields,
                lambda field: field_row(
                    field, field_control(field), errors, form_id + "/" + field["name"].to(str)
                ),
            ),
            rx.el.input(type="hidden", name="__form", value=form_id),
            rx.button(submit_label, type="submit", variant="soft", data_testid="check-form"),
            spacing="3",
            width="100%",
        ),
        on_submit=on_submit,
        reset_on_submit=False,
        width="100%",
    )
