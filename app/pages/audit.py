"""The audit log (owners and admins): logins, member and role changes, tokens, credentials, flow activation,
newest first, filtered by category, actor and period."""

from __future__ import annotations

import datetime as dt
import uuid

import orjson
import reflex as rx

from app.components.formatting import when
from app.components.notice import notice
from app.components.tables import data_table, option_select
from app.context import get_context
from app.errors import HubError
from app.services import audit_log
from app.services.audit_log import AuditFilter
from app.state.auth import AuthState
from app.templates.layout import page_layout

ROUTE = "/audit"
PERIODS = {"24 hours": 1, "7 days": 7, "30 days": 30, "all": None}
ALL = "all"


class AuditState(AuthState):
    rows: list[dict[str, str]] = []
    category: str = ALL
    actor: str = ""
    period: str = "7 days"
    older: int = 0  # the id to page back from; 0 on the last page
    error: str = ""

    def _filter(self) -> AuditFilter:
        days = PERIODS.get(self.period)
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days) if days else None
        return AuditFilter(
            category="" if self.category == ALL else self.category, actor=self.actor, since=since
        )

    def _read(self, before_id: int | None) -> None:
        self.error = ""
        try:
            found = audit_log.list_events(get_context().db, uuid.UUID(self.tenant_id), uuid.UUID(self.user_id),
                                          self._filter(), before_id=before_id, limit=audit_log.PAGE + 1)  # fmt: skip
        except HubError as exc:
            self.rows, self.older, self.error = [], 0, str(exc)
            return
        page = found[: audit_log.PAGE]
        self.older = page[-1].id if len(found) > audit_log.PAGE else 0
        self.rows = [
            {"id": str(r.id), "when": when(r.ts, seconds=True), "action": r.action, "actor": r.actor,
             "target": f"{r.target_type} {r.target_id[:8]}" if r.target_type else "",
             "details": orjson.dumps(r.details).decode() if r.details else "", "ip": r.ip}
            for r in page
        ]  # fmt: skip

    @rx.event
    def load(self):
        redirect = self.require_login()
        if redirect is not None or not self.tenant_id:
            self.rows = []
            return redirect
        self._read(None)
        return None

    @rx.event
    def set_category(self, value: str):
        if self.require_login() is not None:
            return rx.redirect("/login")
        self.category = value
        self._read(None)

    @rx.event
    def set_period(self, value: str):
        if self.require_login() is not None:
            return rx.redirect("/login")
        self.period = value
        self._read(None)

    @rx.event
    def search_actor(self, form: dict[str, str]):
        if self.require_login() is not None:
            return rx.redirect("/login")
        self.actor = form.get("actor", "")
        self._read(None)

    @rx.event
    def older_page(self):
        if self.require_login() is not None:
            return rx.redirect("/login")
        self._read(self.older or None)

    @rx.event
    def newest_page(self):
        if self.require_login() is not None:
            return rx.redirect("/login")
        self._read(None)


def _row(r: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(r["when"], white_space="nowrap"),
        rx.table.cell(rx.code(r["action"])),
        rx.table.cell(r["actor"]),
        rx.table.cell(r["target"]),
        rx.table.cell(rx.text(r["details"], size="1", font_family="monospace", word_break="break-all")),
        rx.table.cell(r["ip"]),
        data_testid="audit-row",
    )


def audit_page() -> rx.Component:
    headers = ["When (UTC)", "Event", "Who", "Object", "Details", "Address"]
    return page_layout(
        ROUTE,
        "Audit log",
        "Who did what in this tenant, and its members' logins.",
        rx.hstack(
            option_select(
                AuditState.category,
                AuditState.set_category,
                {c: c for c in (ALL, *audit_log.CATEGORIES)},
                "audit-category",
            ),
            option_select(AuditState.period, AuditState.set_period, {p: p for p in PERIODS}, "audit-period"),
            rx.form(
                rx.hstack(
                    rx.input(name="actor", placeholder="who (e-mail)", data_testid="audit-actor"),
                    rx.button("Filter", type="submit", variant="soft"),
                ),
                on_submit=AuditState.search_actor,
                reset_on_submit=False,
            ),
            align="center",
            wrap="wrap",
        ),
        notice(AuditState.error, icon="triangle_alert", color="red", test_id="audit-error"),
        data_table(headers, AuditState.rows, _row, "audit-table"),
        rx.hstack(
            rx.button("Newest", variant="soft", on_click=AuditState.newest_page),
            rx.button(
                "Older",
                variant="soft",
                on_click=AuditState.older_page,
                disabled=AuditState.older == 0,
                data_testid="audit-older",
            ),
        ),
    )
