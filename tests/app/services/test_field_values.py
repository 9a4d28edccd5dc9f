"""Form values checked against a component's fields before they are saved."""

from __future__ import annotations

from app.services.field_values import cleaned_values, field_errors
from runtime.components.descriptor import parse_descriptor

DESCRIPTOR = {
    "title": "T",
    "version": "1",
    "actions": {
        "a": {
            "fields": {
                "url": {"label": "URL", "viewClass": "TextFieldView", "required": True},
                "mode": {"label": "Mode", "viewClass": "SelectView", "model": {"a": "A", "b": "B"}},
                "map": {"label": "Mapping", "viewClass": "JSONataView", "required": True},
                "auth": {"label": "Auth", "viewClass": "HTTPAuthView"},
                "on": {"label": "On", "viewClass": "CheckBoxView", "required": True},
            }
        }
    },
}
FIELDS = parse_descriptor(DESCRIPTOR, name="t").descriptor.actions[0].fields


def test_valid_values_have_no_errors() -> None:
    assert (
        field_errors(FIELDS, {"url": "http://x", "mode": "a", "map": "$", "auth": '{"type": "basic"}'}) == {}
    )


def test_each_kind_of_mistake_is_named_on_its_field() -> None:
    errors = field_errors(FIELDS, {"url": "  ", "mode": "c", "map": "{ broken", "auth": "{not json"})
    assert errors["url"] == "URL is required."
    assert errors["mode"] == "Not one of the choices: c."
    assert errors["map"].startswith("Not a valid JSONata expression")
    assert errors["auth"].startswith("Not valid JSON")
    assert "on" not in errors  # an unticked checkbox is a value (false), not a missing one


def test_what_is_kept_declared_fields_trimmed_typed() -> None:
    form = {"url": "  http://x ", "mode": "", "auth": '{"type": "basic"}', "on": "on", "extra": "ignored"}
    assert cleaned_values(FIELDS, form) == {"url": "http://x", "auth": {"type": "basic"}, "on": True}
    assert cleaned_values(FIELDS, form, parse_json=False)["auth"] == '{"type": "basic"}'
    assert cleaned_values(FIELDS, {})["on"] is False  # an unticked checkbox is kept as false
