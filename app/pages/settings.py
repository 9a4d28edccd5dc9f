"""Settings: the current tenant, its members and (later) quotas, retention and API tokens."""

from __future__ import annotations

import uuid

import reflex as rx

from app.context import get_context
from app.services.accounts import list_members
from app.state.auth import AuthState
from app.templates.layout import coming_next, page_layout
from runtime.executors.sandbox import sandbox_problem

ROUTE = "/settings"


class SettingsState(AuthState):
    members: list[dict[str, str]] = []
    sandbox_warning: str = ""  # for admins: why component runners are not sandboxed on this machine

    @rx.event
    def load(self):
        redirect = self.require_login()
        if redirect is not None or not self.tenant_id:
            self.members = []
            return redirect
        members = list_members(get_context().db, uuid.UUID(self.tenant_id))
        self.members = [{"email": m.email, "name": m.display_name, "role": m.role.value} for m in members]
        admin = self.role in ("owner", "admin") or self.is_superuser
        self.sandbox_warning = (sandbox_problem() or "") if admin else ""
        return None


def _members_table() -> rx.Component:
    return rx.table.root(
        rx.table.header(
            rx.table.row(
                rx.table.column_header_cell("E-mail"),
                rx.table.column_header_cell("Name"),
                rx.table.column_header_cell("Role"),
            )
        ),
        rx.table.body(
            rx.foreach(
                SettingsState.members,
                lambda m: rx.table.row(
                    rx.table.cell(m["email"]), rx.table.cell(m["name"]), rx.table.cell(rx.badge(m["role"]))
                ),
            )
        ),
        variant="surface",
        width="100%",
        data_testid="members-table",
    )


def settings_page() -> rx.Component:
    return page_layout(
        ROUTE,
        "Settings",
        "Your tenant and the people in it.",
        rx.cond(
            SettingsState.sandbox_warning != "",
            rx.callout(
                SettingsState.sandbox_warning,
                icon="shield_alert",
                color_scheme="amber",
                width="100%",
                data_testid="sandbox-warning",
            ),
        ),
        rx.heading(rx.text.span("Tenant: "), rx.text.span(AuthState.tenant_name), size="4"),
        rx.text("Members", weight="medium", padding_top="8px"),
        _members_table(),
        coming_next(
            "Later releases add here:",
            [
                "inviting members by link, changing roles, removing members",
                "API tokens (shown once, scoped, expiring)",
                "quotas, fair-share weight and run retention (administrators)",
            ],
        ),
    )
