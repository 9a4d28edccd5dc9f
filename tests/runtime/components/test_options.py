"""A dynamic select's choices as components return them, made value -> label."""

from __future__ import annotations

import pytest

from runtime.components.options import MAX_OPTIONS, OptionsError, normalize_options


def test_an_object_maps_values_to_labels() -> None:
    assert normalize_options({"a": "Alpha", 2: 3}) == {"a": "Alpha", "2": "3"}


def test_lists_of_values_and_of_objects() -> None:
    assert normalize_options(["x", 7]) == {"x": "x", "7": "7"}
    assert normalize_options([{"value": "v", "label": "Vee"}, {"id": 9, "name": "Nine"}, {"id": "z"}]) == {
        "v": "Vee",
        "9": "Nine",
        "z": "z",
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (42, "returned int, not an object or a list"),
        (None, "returned NoneType"),
        ([{"label": "no value"}], "neither 'value' nor 'id'"),
        ([True], "is bool, not a value"),
        ([[1, 2]], "is list, not a value"),
    ],
)
def test_what_cannot_be_choices_says_why(raw, message) -> None:
    with pytest.raises(OptionsError, match=message):
        normalize_options(raw)


def test_too_many_choices_are_refused() -> None:
    with pytest.raises(OptionsError, match=f"at most {MAX_OPTIONS}"):
        normalize_options(list(range(MAX_OPTIONS + 1)))
