"""Dashboard: the tenant's home page. The last 24 hours at a glance: runs per hour by status, error rate,
duration percentiles per flow, the flows failing most; for hub administrators each tenant's queue and worker
time."""

from __future__ import annotations

import uuid
from typing import Any

import reflex as rx

from app.components.formatting import duration
from app.context import get_context
from app.errors import HubError
from app.services.activity import activity
from app.services.dashboard import dashboard
from app.state.auth import AuthState
from app.templates.layout import page_layout

ROUTE = "/dashboard"


class DashboardState(AuthState):
    hours: list[dict[str, Any]] = []
    durations: list[dict[str, Any]] = []
    failing: list[dict[str, str]] = []
    tenants: list[dict[str, Any]] = []  # hub administrators: every tenant's queue and worker time
    totals: dict[str, str] = {}
    error: str = ""

    @rx.event
    def load(self):
        redirect = self.require_login()
        if redirect is not None or not self.tenant_id:
            self.hours, self.durations, self.failing, self.tenants = [], [], [], []
            return redirect
        ctx = get_context()
        board = dashboard(ctx.db, uuid.UUID(self.tenant_id))
        self.hours = [{"hour": h.hour, "succeeded": h.succeeded, "failed": h.failed, "other": h.other,
                       "error_rate": h.error_rate} for h in board.hours]  # fmt: skip
        self.durations = [{"flow": d.name, "p50": round(d.p50_ms / 1000, 3), "p95": round(d.p95_ms / 1000, 3),
                           "runs": d.runs} for d in board.durations]  # fmt: skip
        self.failing = [
            {"id": str(f.flow_id), "name": f.name, "failed": str(f.failed)} for f in board.failing
        ]
        self.totals = {"runs": f"{board.runs:,}", "failed": f"{board.failed:,}", "error_rate": f"{board.error_rate}%",
                       "p95": duration(max((d.p95_ms for d in board.durations), default=None))}  # fmt: skip
        self.tenants, self.error = [], ""
        if self.is_superuser:
            try:
                _, rows = activity(ctx.db, ctx.redis, is_superuser=True)
            except HubError as exc:
                self.error = str(exc)
                return None
            self.tenants = [{"tenant": r.name, "queued": r.figures.backlog,
                             "worker_s": round(r.figures.usage.worker_ms_hour / 1000, 1)} for r in rows[:15]]  # fmt: skip
        return None


def _figure(label: str, value: rx.Var, testid: str) -> rx.Component:
    return rx.card(rx.vstack(rx.text(label, size="1", color_scheme="gray"),
                             rx.text(value, size="6", weight="bold", data_testid=testid), spacing="1"),
                   min_width="160px")  # fmt: skip


def _chart(title: str, chart: rx.Component, testid: str) -> rx.Component:
    return rx.card(rx.vstack(rx.text(title, weight="medium"), chart, width="100%"), width="100%",
                   data_testid=testid)  # fmt: skip


def _runs_per_hour() -> rx.Component:
    return rx.recharts.bar_chart(
        rx.recharts.cartesian_grid(stroke_dasharray="3 3"),
        rx.recharts.bar(
            is_animation_active=False,
            data_key="succeeded",
            stack_id="runs",
            fill="var(--green-9)",
            name="succeeded",
        ),
        rx.recharts.bar(
            is_animation_active=False, data_key="failed", stack_id="runs", fill="var(--red-9)", name="failed"
        ),
        rx.recharts.bar(
            is_animation_active=False,
            data_key="other",
            stack_id="runs",
            fill="var(--gray-8)",
            name="running or other",
        ),
        rx.recharts.x_axis(data_key="hour", interval=2),
        rx.recharts.y_axis(allow_decimals=False),
        rx.recharts.graphing_tooltip(),
        rx.recharts.legend(),
        data=DashboardState.hours,
        width="100%",
        height=260,
    )


def _error_rate() -> rx.Component:
    return rx.recharts.line_chart(
        rx.recharts.cartesian_grid(stroke_dasharray="3 3"),
        rx.recharts.line(
            is_animation_active=False,
            data_key="error_rate",
            stroke="var(--red-9)",
            name="error rate %",
            dot=False,
        ),
        rx.recharts.x_axis(data_key="hour", interval=2),
        rx.recharts.y_axis(domain=[0, 100], unit="%"),
        rx.recharts.graphing_tooltip(),
        data=DashboardState.hours,
        width="100%",
        height=200,
    )


def _durations() -> rx.Component:
    return rx.recharts.bar_chart(
        rx.recharts.cartesian_grid(stroke_dasharray="3 3"),
        rx.recharts.bar(is_animation_active=False, data_key="p50", fill="var(--indigo-7)", name="p50 (s)"),
        rx.recharts.bar(is_animation_active=False, data_key="p95", fill="var(--indigo-10)", name="p95 (s)"),
        rx.recharts.x_axis(data_key="flow"),
        rx.recharts.y_axis(unit=" s"),
        rx.recharts.graphing_tooltip(),
        rx.recharts.legend(),
        data=DashboardState.durations,
        width="100%",
        height=240,
    )


def _tenants() -> rx.Component:
    return rx.recharts.bar_chart(
        rx.recharts.cartesian_grid(stroke_dasharray="3 3"),
        rx.recharts.bar(is_animation_active=False, data_key="queued", fill="var(--amber-9)", name="queued messages", y_axis_id="left"),
        rx.recharts.bar(is_animation_active=False, data_key="worker_s", fill="var(--blue-9)", name="worker seconds, last hour",
                        y_axis_id="right"),
        rx.recharts.x_axis(data_key="tenant"),
        rx.recharts.y_axis(y_axis_id="left", allow_decimals=False),
        rx.recharts.y_axis(y_axis_id="right", orientation="right"),
        rx.recharts.graphing_tooltip(),
        rx.recharts.legend(),
        data=DashboardState.tenants,
        width="100%",
        height=240,
    )  # fmt: skip


def _failing() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text("Failed most in the last 24 hours", weight="medium"),
            rx.cond(
                DashboardState.failing.length() > 0,
                rx.foreach(DashboardState.failing, lambda f: rx.hstack(
                    rx.link(f["name"], href="/runs?flow=" + f["id"] + "&status=failed&period=24h", data_testid="failing-flow"),
                    rx.spacer(), rx.badge(f["failed"], " failed", color_scheme="red"), width="100%",
                )),
                rx.text("No failed runs. ", size="2", color_scheme="gray", data_testid="no-failing"),
            ),
            width="100%",
        ),
        width="100%",
    )  # fmt: skip


def dashboard_page() -> rx.Component:
    return page_layout(
        ROUTE,
        "Dashboard",
        "The last 24 hours of this tenant's flows (UTC).",
        rx.hstack(
            _figure("Runs", DashboardState.totals["runs"], "dash-runs"),
            _figure("Failed", DashboardState.totals["failed"], "dash-failed"),
            _figure("Error rate", DashboardState.totals["error_rate"], "dash-error-rate"),
            _figure("Slowest flow, p95", DashboardState.totals["p95"], "dash-p95"),
            wrap="wrap", spacing="3", width="100%",
        ),
        _chart("Runs per hour", _runs_per_hour(), "chart-runs"),
        rx.grid(
            _chart("Error rate per hour", _error_rate(), "chart-errors"),
            _failing(),
            columns="2", spacing="3", width="100%",
        ),
        _chart("Duration per flow (p50 and p95)", _durations(), "chart-durations"),
        rx.cond(AuthState.is_superuser,
                _chart("Queue and worker time per tenant (hub administrators)", _tenants(), "chart-tenants")),
    )  # fmt: skip
