"""The centred card used by the login and first-run set-up pages."""

from __future__ import annotations

import reflex as rx


def auth_card(title: str, subtitle: str | rx.Var, *children: rx.Component) -> rx.Component:
    return rx.center(
        rx.card(
            rx.vstack(
                rx.hstack(
                    rx.icon("waypoints", size=28, color=rx.color("indigo", 9)),
                    rx.heading("Integration Hub", size="5"),
                    align="center",
                    spacing="2",
                ),
                rx.heading(title, size="6", padding_top="8px"),
                rx.text(subtitle, color_scheme="gray", size="2"),
                *children,
                spacing="3",
                width="100%",
            ),
            size="4",
            width="400px",
        ),
        height="100vh",
        background_color=rx.color("gray", 2),
    )


def field(label: str, name: str, type_: str = "text", **props: object) -> rx.Component:
    return rx.vstack(
        rx.text(label, as_="label", html_for=name, size="2", weight="medium"),
        rx.input(id=name, name=name, type=type_, width="100%", size="3", **props),
        spacing="1",
        width="100%",
    )


def error_callout(message: rx.Var) -> rx.Component:
    return rx.cond(
        message != "",
        rx.callout.root(
            rx.callout.icon(rx.icon("circle-alert")),
            rx.callout.text(message),
            color_scheme="red",
            role="alert",
            data_testid="form-error",
            width="100%",
        ),
    )
