"""One flow: its status, activation, and its webhook (the designer adds the canvas here with its issue)."""

from __future__ import annotations

import json
import uuid

import reflex as rx

from app.components.notice import notice
from app.components.webhook_panel import webhook_panel
from app.context import get_context
from app.errors import HubError
from app.services.accounts import slugify
from app.services.flow_export import export_flow
from app.state.webhooks import WebhookState
from app.templates.layout import page_layout

ROUTE = "/flows/[flow_id]"


class FlowExportState(WebhookState):
    @rx.event
    def export(self):
        """The flow as a file to share: no credentials, no URL, no pasted secret (see flow_export)."""
        self.error = ""
        if self.require_login() is not None:
            self.error = "Your session has ended; log in again."
            return None
        ctx = get_context()
        try:
            document = export_flow(
                ctx.db, ctx.vault, uuid.UUID(self.tenant_id), self._user(), uuid.UUID(self.current_flow_id)
            )
        except (HubError, ValueError) as exc:
            self.error = str(exc)
            return None
        return rx.download(
            data=json.dumps(document, indent=2, ensure_ascii=False),
            filename=f"{slugify(self.flow_name)}.flow.json",
        )


def _status() -> rx.Component:
    return rx.hstack(
        rx.badge(
            WebhookState.flow_status,
            color_scheme=WebhookState.status_color,
            size="2",
            data_testid="flow-status",
        ),
        rx.cond(
            WebhookState.version_number > 0,
            rx.text("published version ", WebhookState.version_number, size="2", color_scheme="gray"),
            rx.text("not published yet", size="2", color_scheme="gray"),
        ),
        rx.spacer(),
        rx.button(
            "Export",
            variant="soft",
            color_scheme="gray",
            on_click=FlowExportState.export,
            data_testid="export-flow",
        ),
        rx.cond(
            WebhookState.active | (WebhookState.flow_status == "starting"),
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


def _status_reason() -> rx.Component:
    return rx.cond(
        WebhookState.status_reason != "",
        rx.cond(
            WebhookState.flow_status == "error",
            rx.callout(
                WebhookState.status_reason,
                icon="triangle_alert",
                color_scheme="red",
                width="100%",
                data_testid="flow-status-reason",
            ),
            rx.hstack(  # starting or stopping: a worker is on it
                rx.spinner(size="2"),
                rx.text(WebhookState.status_reason, size="2", color_scheme="gray"),
                align="center",
                data_testid="flow-status-reason",
            ),
        ),
    )


def _schedule() -> rx.Component:
    return rx.cond(
        WebhookState.schedule_words != "",
        rx.card(
            rx.vstack(
                rx.hstack(
                    rx.text("Schedule", weight="medium"),
                    rx.code(WebhookState.schedule),
                    rx.text(WebhookState.schedule_words, size="2", data_testid="schedule-words"),
                    align="center",
                ),
                rx.cond(
                    WebhookState.next_ticks.length() > 0,
                    rx.text(
                        "Next: ",
                        rx.foreach(
                            WebhookState.next_ticks, lambda t: rx.badge(t, variant="soft", margin_right="4px")
                        ),
                        size="2",
                        data_testid="next-ticks",
                    ),
                ),
                rx.text(
                    "Times are UTC, on the wall clock (as cron). Ticks skipped while the previous run was still "
                    "running: ",
                    WebhookState.ticks_skipped,
                    size="1",
                    color_scheme="gray",
                ),
                spacing="2",
            ),
            width="100%",
            data_testid="flow-schedule",
        ),
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
                _status_reason(),
                notice(WebhookState.standing, icon="shield_alert", color="orange", test_id="flow-standing"),
                _schedule(),
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
