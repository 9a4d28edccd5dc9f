"""The component.json parser on odd input: repairs with warnings, or a DescriptorError; never anything else."""

from __future__ import annotations

import json

import pytest

from runtime.components.descriptor import (
    METADATA_BUDGET_BYTES,
    DescriptorError,
    load_descriptor_json,
    parse_descriptor,
)
from runtime.components.registry import spec_from_descriptor

ACTION = {"go": {"main": "./go.js", "fields": {"x": {"label": "X", "viewClass": "TextFieldView"}}}}


@pytest.mark.parametrize(
    "raw",
    [
        {"title": "t", "actions": {"go": {"fields": {"x": {"order": float("inf")}}}}},
        {"title": "t", "x-hub": None, "actions": ACTION},
        {"title": "t", "actions": {"go": {"x-hub": "fusible", "fields": {}}}},
        {"title": "t", "x-hub": {"credential_kinds": "fields"}, "actions": ACTION},
        {
            "title": 5,
            "version": 1.5,
            "actions": {"go": {"fields": {"a": [1], "b": {"model": 3}, "c": {"require": 1}}}},
        },
        {"title": "t", "actions": {"go": {"metadata": [1, 2]}, "more": {"metadata": {"in": 7}}}},
    ],
)
def test_odd_descriptors_are_repaired_and_stay_usable(raw: dict) -> None:
    parsed = parse_descriptor(raw, name="odd")
    spec = spec_from_descriptor("odd", parsed.cleaned)  # what the runtime builds from the stored document
    assert spec.functions
    assert all(
        isinstance(kind, str) and len(kind) > 1
        for f in spec.functions.values()
        for kind in f.credential_kinds
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"title": ' + "1" * 5000 + "}", "cannot be read"),
    ],
)
def test_unreadable_json_is_a_descriptor_error(text: str, message: str) -> None:
    with pytest.raises(DescriptorError, match=message):
        load_descriptor_json(text)


def test_metadata_files_are_found_by_name_and_cannot_multiply() -> None:
    schema = json.dumps({"type": "object", "properties": {"a": {"type": "string"}}})
    raw = {"title": "t", "actions": {"go": {"metadata": {"in": "./lib/schemas/in.json"}}}}
    parsed = parse_descriptor(raw, name="t", files={"in.json": schema})  # an upload knows only the file name
    assert parsed.cleaned["actions"]["go"]["metadata"]["in"]["properties"] == {"a": {"type": "string"}}
    big = json.dumps({"type": "object", "description": "x" * (METADATA_BUDGET_BYTES // 4)})
    many = {f"f{i}": {"metadata": {"in": "big.json", "out": "big.json"}} for i in range(4)}
    with pytest.raises(DescriptorError, match="metadata files add up to more than"):
        parse_descriptor({"title": "t", "actions": many}, name="t", files={"big.json": big})


def test_a_capitalised_version_counts_and_stored_keys_are_not_content() -> None:
    parsed = parse_descriptor({"title": "t", "Version": "2.5.0", "actions": ACTION}, name="t")
    assert (parsed.descriptor.version, parsed.version_declared) == ("2.5.0", True)
    stored = {**parsed.cleaned, "x-hub-digest": "abc", "x-hub-warnings": ["w"]}
    assert parse_descriptor(stored, name="t").cleaned == parsed.cleaned
