"""The pieces every list page draws the same way: a table of rows under a header, and a select of fixed options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reflex as rx


def data_table(
    headers: list[str], rows: rx.Var, row: Callable[[rx.Var], rx.Component], test_id: str
) -> rx.Component:
    return rx.table.root(
        rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in headers])),
        rx.table.body(rx.foreach(rows, row)),
        variant="surface",
        width="100%",
        data_testid=test_id,
    )


def option_select(value: rx.Var, on_change: Any, options: dict[str, str], test_id: str) -> rx.Component:
    """`options`: value -> label."""
    return rx.select.root(
        rx.select.trigger(data_testid=test_id),
        rx.select.content(*[rx.select.item(label, value=key) for key, label in options.items()]),
        value=value,
        on_change=on_change,
    )
