"""A callout shown only while its text is not empty: the warnings and errors pages keep in their state."""

from __future__ import annotations

from typing import Any

import reflex as rx


def notice(text: rx.Var, *, icon: str, color: str, test_id: str, **props: Any) -> rx.Component:
    return rx.cond(
        text != "",
        rx.callout(text, icon=icon, color_scheme=color, width="100%", data_testid=test_id, **props),
    )
