"""One flow: its status, activation, and its webhook (the designer adds the canvas here with its issue)."""

from __future__ import annotations

import reflex as rx

from app.components.webhook_panel import webhook_panel
from app.state.webhooks import WebhookState
from app.templates.layout import page_layout

ROUTE = "/flows/[flow_id]"


def _status() -> rx.Component:
    return rx.hstack(
        rx.badge(
            WebhookState.flow_status,
            color_scheme=rx.cond(WebhookState.active, "green", "gray"),
            size="2",
            data_testid="flow-status",
        ),
        rx.cond(
            WebhookState.version_number > 0,
            rx.text("published version ", WebhookState.version_number, size="2", color_scheme="gray"),
            rx.text("not published yet", size="2", color_scheme="gray"),
        ),
        rx.spacer(),
        rx.cond(
            WebhookState.active,
            rx.button(
                "Deactivate",
                variant="soft",
                color_scheme="gray",
                on_click=WebhookState.deactivate,
                disabled=~WebhookState.can_edit,
                data_testid="deactivate",
            ),
            rx.button(
                "Activate",
                on_click=WebhookState.activate,
                disabled=~WebhookState.can_edit,
                data_testid="activate",
            ),
        ),
        align="center",
        width="100%",
    )


def flow_page() -> rx.Component:
    return page_layout(
        "/flows",
        "Flow",
        "Its status, its activation and the URL that starts it.",
        rx.cond(
            WebhookState.flow_name != "",
            rx.vstack(
                rx.heading(WebhookState.flow_name, size="5", data_testid="flow-name"),
                _status(),
                rx.cond(
                    (WebhookState.error != "") & ~WebhookState.can_edit,
                    rx.callout(WebhookState.error, icon="circle-alert", color_scheme="red"),
                ),
                webhook_panel(),
                spacing="3",
                width="100%",
            ),
            rx.callout(
                WebhookState.error, icon="circle-alert", color_scheme="red", data_testid="flow-missing"
            ),
        ),
    )
