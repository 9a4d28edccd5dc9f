"""A secret shown once, right after it was made (an API token, an invitation link): copy it, then dismiss it."""

from __future__ import annotations

from typing import Any

import reflex as rx


def shown_once(value: rx.Var, *, icon: str, advice: str, on_done: Any, test_id: str) -> rx.Component:
    return rx.cond(
        value != "",
        rx.callout.root(
            rx.callout.icon(rx.icon(icon)),
            rx.callout.text(
                rx.vstack(
                    rx.text(advice),
                    rx.hstack(
                        rx.code(value, data_testid=test_id),
                        rx.icon_button(rx.icon("copy", size=14), size="1", variant="soft",
                                       on_click=rx.set_clipboard(value)),
                        rx.button("Done", size="1", variant="soft", on_click=on_done, data_testid=f"{test_id}-done"),
                        align="center",
                    ),
                )
            ),
            color_scheme="green",
            width="100%",
        ),
    )  # fmt: skip
