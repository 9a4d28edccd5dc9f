"""Flows: the tenant's integration flows (the designer and the full list arrive with the designer issue)."""

from __future__ import annotations

import uuid

import reflex as rx
import sqlalchemy as sa

from app.context import get_context
from app.state.auth import AuthState
from app.storage.models import Flow
from app.storage.scoping import tenant_session
from app.templates.layout import coming_next, page_layout

ROUTE = "/flows"


class FlowsState(AuthState):
    rows: list[dict[str, str]] = []

    @rx.event
    def load(self):
        redirect = self.require_login()
        if redirect is not None or not self.tenant_id:
            self.rows = []
            return redirect
        with tenant_session(get_context().db.sessions, uuid.UUID(self.tenant_id)) as session:
            flows = session.scalars(sa.select(Flow).order_by(Flow.updated_at.desc()).limit(200)).all()
            self.rows = [
                {
                    "id": str(f.id),
                    "name": f.name,
                    "status": f.status,
                    "trigger": str((f.graph or {}).get("nodes", [{}])[0].get("component", ""))
                    if f.graph
                    else "",
                    "updated": f.updated_at.strftime("%Y-%m-%d %H:%M"),
                }
                for f in flows
            ]
        return None


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(row["name"], href="/flows/" + row["id"], data_testid="flow-link")),
        rx.table.cell(row["trigger"]),
        rx.table.cell(
            rx.badge(row["status"], color_scheme=rx.cond(row["status"] == "active", "green", "gray"))
        ),
        rx.table.cell(row["updated"]),
    )


def flows_page() -> rx.Component:
    return page_layout(
        ROUTE,
        "Flows",
        "Integration flows of this tenant: a trigger and the steps that process its messages.",
        rx.cond(
            FlowsState.rows.length() > 0,
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        *[rx.table.column_header_cell(h) for h in ("Name", "Trigger", "Status", "Updated")]
                    )
                ),
                rx.table.body(rx.foreach(FlowsState.rows, _row)),
                width="100%",
                data_testid="flows-table",
            ),
            rx.text("No flows yet.", color_scheme="gray"),
        ),
        coming_next(
            "Next on this page:",
            [
                "create, rename, duplicate, delete, search and sort, last run and its result",
                "a drag-and-drop canvas with the component palette, node configuration and test runs",
            ],
        ),
    )
