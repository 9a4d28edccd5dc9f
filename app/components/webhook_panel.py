"""The webhook panel: production and test URLs (create, copy, rotate, revoke, listen) and how the webhook
answers and whom it accepts. Used on the flow page and in the designer's webhook-trigger panel."""

from __future__ import annotations

from typing import Any

import reflex as rx

from app.components.notice import notice
from app.state.webhooks import WebhookState

S = WebhookState.settings


def _url_row(url: rx.Var, testid: str) -> rx.Component:
    return rx.hstack(
        rx.code(url, size="2", data_testid=testid, style={"word_break": "break-all"}, flex="1"),
        rx.tooltip(
            rx.icon_button(
                rx.icon("copy", size=16),
                variant="soft",
                size="1",
                on_click=[rx.set_clipboard(url), rx.toast.info("Copied.")],
                data_testid=f"{testid}-copy",
            ),
            content="Copy",
        ),
        align="center",
        width="100%",
    )


def _confirm(
    label: str, title: str, text: str, action: rx.EventHandler, testid: str, color: str
) -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(
            rx.button(
                label,
                variant="soft",
                color_scheme=color,
                size="2",
                disabled=~WebhookState.can_edit,
                data_testid=testid,
            ),
        ),
        rx.alert_dialog.content(
            rx.alert_dialog.title(title),
            rx.alert_dialog.description(text),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", color_scheme="gray")),
                rx.alert_dialog.action(
                    rx.button(label, color_scheme=color, on_click=action, data_testid=f"{testid}-confirm")
                ),
                justify="end",
                spacing="3",
                margin_top="16px",
            ),
        ),
    )


def _production() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.heading("Production URL", size="3"),
            rx.cond(
                WebhookState.active,
                rx.badge("starts runs", color_scheme="green"),
                rx.badge("answers 410 while the flow is inactive", color_scheme="gray"),
            ),
            align="center",
        ),
        rx.cond(
            WebhookState.production_url != "",
            rx.vstack(
                _url_row(WebhookState.production_url, "production-url"),
                notice(
                    WebhookState.problem,
                    icon="triangle-alert",
                    color="amber",
                    test_id="webhook-problem",
                    size="1",
                ),
                rx.hstack(
                    _confirm(
                        "Rotate",
                        "Rotate this URL?",
                        "A new URL replaces it; callers of the old one get 404 from this moment.",
                        WebhookState.rotate_production_url,
                        "rotate-url",
                        "amber",
                    ),
                    _confirm(
                        "Revoke",
                        "Revoke this URL?",
                        "Callers get 404 from this moment. You can create a new URL later.",
                        WebhookState.revoke_production_url,
                        "revoke-url",
                        "red",
                    ),
                ),
                width="100%",
            ),
            rx.button(
                rx.icon("link", size=16),
                "Create webhook URL",
                on_click=WebhookState.create_production_url,
                disabled=~WebhookState.can_edit,
                data_testid="create-production-url",
            ),
        ),
        width="100%",
        spacing="2",
    )


def _test(on_listen: Any) -> rx.Component:
    return rx.vstack(
        rx.heading("Test URL", size="3"),
        rx.text(
            "Captures the next request and runs the current draft in test mode, even while the flow is inactive.",
            size="2",
            color_scheme="gray",
        ),
        rx.cond(WebhookState.test_url != "", _url_row(WebhookState.test_url, "test-url")),
        rx.hstack(
            rx.button(
                rx.icon("radio", size=16),
                "Listen for a test request",
                on_click=on_listen,
                disabled=~WebhookState.can_edit,
                variant="outline",
                data_testid="listen-test",
            ),
            rx.cond(
                WebhookState.listening_until != "",
                rx.badge(
                    rx.spinner(size="1"),
                    "listening until ",
                    WebhookState.listening_until,
                    color_scheme="indigo",
                    data_testid="listening",
                ),
            ),
            align="center",
        ),
        rx.cond(
            WebhookState.captured != "",
            rx.vstack(
                rx.text("Last captured request", size="2", weight="bold"),
                rx.code_block(WebhookState.captured, language="json", width="100%", data_testid="captured"),
                width="100%",
            ),
        ),
        width="100%",
        spacing="2",
    )


def _field(label: str, name: str, *, kind: str = "text", hint: str = "") -> rx.Component:
    return rx.vstack(
        rx.text(label, size="2", weight="medium"),
        rx.input(name=name, default_value=S[name], type=kind, data_testid=f"setting-{name}", width="100%"),
        rx.cond(hint != "", rx.text(hint, size="1", color_scheme="gray")),
        spacing="1",
        width="100%",
    )


def _secret(label: str, name: str) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="2", weight="medium"),
        rx.input(
            name=f"secret_{name}",
            type="password",
            auto_complete="new-password",
            width="100%",
            placeholder=rx.cond(WebhookState.protected, "stored — type to replace", ""),
            data_testid=f"secret-{name}",
        ),
        spacing="1",
        width="100%",
    )


def _select(
    label: str, name: str, options: list[str], on_change: rx.EventHandler | None = None
) -> rx.Component:
    # Controlled where other inputs depend on it (mode, protection), otherwise a plain form value.
    value = (
        {"value": S[name], "on_change": on_change} if on_change is not None else {"default_value": S[name]}
    )
    return rx.vstack(
        rx.text(label, size="2", weight="medium"),
        rx.select.root(
            rx.select.trigger(data_testid=f"setting-{name}", width="100%"),
            rx.select.content(*[rx.select.item(option, value=option) for option in options]),
            name=name,
            **value,
        ),
        spacing="1",
        width="100%",
    )


def _settings_form() -> rx.Component:
    auth = S["auth"]
    return rx.form(
        rx.vstack(
            rx.heading("How it answers", size="3"),
            rx.grid(
                _select("Mode", "mode", ["async", "sync"], WebhookState.set_mode),
                _field("Reply timeout (s, sync mode)", "timeout_s", kind="number"),
                _field("Body limit (KiB)", "max_body_kb", kind="number"),
                _field("Requests per second (0: no limit)", "rate_per_s", kind="number"),
                _field("Burst", "burst", kind="number"),
                columns="3",
                spacing="3",
                width="100%",
            ),
            rx.text(
                "async answers 202 with the run id once the request is stored; sync waits for the flow's "
                "Reply step and answers 504 with the run id after the timeout (the run goes on).",
                size="1",
                color_scheme="gray",
            ),
            rx.heading("Who may call it", size="3", margin_top="8px"),
            _select("Protection", "auth", ["none", "basic", "header", "hmac"], WebhookState.set_auth),
            rx.cond(
                auth == "basic",
                rx.grid(
                    _secret("User name", "username"),
                    _secret("Password", "password"),
                    columns="2",
                    spacing="3",
                    width="100%",
                ),
            ),
            rx.cond(
                auth == "header",
                rx.grid(
                    _field("Header", "header", hint="e.g. X-Api-Key"),
                    _secret("Token", "token"),
                    columns="2",
                    spacing="3",
                    width="100%",
                ),
            ),
            rx.cond(
                auth == "hmac",
                rx.vstack(
                    rx.grid(
                        _field("Signature header", "header", hint="e.g. X-Hub-Signature-256"),
                        _select("Algorithm", "algorithm", ["sha256", "sha1"]),
                        _select("Encoding", "encoding", ["hex", "base64"]),
                        _field("Prefix", "prefix", hint='e.g. "sha256=" (GitHub)'),
                        _field(
                            "Timestamp header (optional)",
                            "timestamp_header",
                            hint="then the signed text is <timestamp>.<body>",
                        ),
                        _field("Timestamp tolerance (s)", "tolerance_s", kind="number"),
                        columns="3",
                        spacing="3",
                        width="100%",
                    ),
                    _secret("Signing secret", "secret"),
                    width="100%",
                ),
            ),
            rx.cond(
                WebhookState.error != "",
                rx.callout(
                    WebhookState.error, icon="circle-alert", color_scheme="red", data_testid="webhook-error"
                ),
            ),
            rx.button(
                "Save webhook settings",
                type="submit",
                disabled=~WebhookState.can_edit,
                data_testid="save-webhook-settings",
            ),
            spacing="3",
            width="100%",
        ),
        on_submit=WebhookState.save_settings,
        reset_on_submit=False,
        key=WebhookState.current_flow_id,  # not the settings: choosing a mode must not wipe what was typed
        width="100%",
    )


def webhook_panel(on_listen: Any = None) -> rx.Component:
    """`on_listen`: what "Listen for a test request" does (the designer also follows the run it starts)."""
    return rx.card(
        rx.vstack(
            rx.hstack(rx.icon("webhook", size=20), rx.heading("Webhook", size="4"), align="center"),
            _production(),
            rx.divider(),
            _test(on_listen if on_listen is not None else WebhookState.listen),
            rx.divider(),
            _settings_form(),
            spacing="4",
            width="100%",
        ),
        width="100%",
        data_testid="webhook-panel",
    )
