"""Runs: every run of the tenant's flows, filtered and paged on the server, and the dead letters of a flow with
replay and discard."""

from __future__ import annotations

import datetime as dt
import uuid

import reflex as rx
import sqlalchemy as sa

from app.components.formatting import RUN_COLORS, duration, when
from app.components.tables import option_select
from app.context import get_context
from app.errors import HubError
from app.services import runs as run_service
from app.services.run_history import RunFilter, list_runs
from app.state.auth import EDIT_ROLES, AuthState
from app.storage.models import Flow
from app.storage.scoping import tenant_session
from app.templates.layout import page_layout

ROUTE = "/runs"
ANY = "any"
STATUSES = {ANY: "Any status", "running": "Running", "queued": "Queued", "succeeded": "Succeeded",
            "failed": "Failed (also partly)", "partially_failed": "Partly failed", "cancelled": "Cancelled"}  # fmt: skip
TRIGGERS = {ANY: "Any trigger", "webhook": "Webhook", "schedule": "Schedule", "manual": "Manual",
            "replay": "Replay"}  # fmt: skip
PERIODS = {"1h": ("Last hour", 1), "24h": ("Last 24 hours", 24), "7d": ("Last 7 days", 24 * 7),
           "30d": ("Last 30 days", 24 * 30), "all": ("Any time", 0)}  # fmt: skip


class RunsState(AuthState):
    rows: list[dict[str, str]] = []
    flow_options: list[list[str]] = []  # [id, name]
    flow: str = ANY
    status: str = ANY
    trigger: str = ANY
    period: str = "7d"
    text: str = ""
    include_tests: bool = False
    older: str = ""
    newer: str = ""
    error: str = ""
    dead: list[dict[str, str]] = []  # the chosen flow's dead letters

    @rx.var
    def can_edit(self) -> bool:
        return self.role in EDIT_ROLES

    @rx.event
    def load(self):
        redirect = self.require_login()
        if redirect is not None or not self.tenant_id:
            self.rows, self.dead = [], []
            return redirect
        query = self.router.url.query_parameters
        self.flow = str(query.get("flow") or ANY)
        self.status = str(query.get("status") or ANY) if query.get("status") in STATUSES else ANY
        self.trigger, self.text, self.include_tests = ANY, "", False
        self.period = str(query.get("period")) if query.get("period") in PERIODS else "7d"
        with tenant_session(get_context().db.sessions, uuid.UUID(self.tenant_id)) as session:
            self.flow_options = [[str(i), n] for i, n in session.execute(sa.select(Flow.id, Flow.name)
                                                                        .order_by(sa.func.lower(Flow.name)))]  # fmt: skip
        if self.flow != ANY and self.flow not in {i for i, _ in self.flow_options}:
            self.flow = ANY
        self._list()
        self._dead_letters()
        return None

    def _filter(self) -> RunFilter:
        hours = PERIODS.get(self.period, PERIODS["7d"])[1]
        return RunFilter(
            flow_id=uuid.UUID(self.flow) if self.flow != ANY else None,
            status=None if self.status == ANY else self.status,
            trigger=None if self.trigger == ANY else self.trigger,
            since=dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours) if hours else None,
            text=self.text,
            include_tests=self.include_tests,
        )

    def _list(self, *, older_than: str | None = None, newer_than: str | None = None) -> None:
        self.error = ""
        try:
            page = list_runs(get_context().db, uuid.UUID(self.tenant_id), self._filter(),
                             older_than=older_than, newer_than=newer_than)  # fmt: skip
        except HubError as exc:
            self.error, self.rows, self.older, self.newer = str(exc), [], "", ""
            return
        if not page.rows and (older_than or newer_than):
            # The runs around the cursor are gone (retention, or the period moved on): back to the newest.
            self._list()
            return
        self.rows = [
            {
                "id": str(r.id),
                "short": r.id.hex[:8],
                "flow": r.flow_name,
                "flow_id": str(r.flow_id),
                "status": r.status.replace("_", " "),
                "color": RUN_COLORS.get(r.status, "gray"),
                "trigger": r.trigger + (" (test)" if r.test else ""),
                "started": when(r.started_at, seconds=True),
                "duration": duration(r.duration_ms),
                "error": (r.error or "")[:160],
            }
            for r in page.rows
        ]
        self.older, self.newer = page.older or "", page.newer or ""

    def _dead_letters(self) -> None:
        if self.flow == ANY:
            self.dead = []
            return
        letters = run_service.list_dead_letters(
            get_context().bus, uuid.UUID(self.tenant_id), uuid.UUID(self.flow)
        )
        self.dead = [
            {"id": d.id, "run": str(d.run_id), "short": d.run_id.hex[:8], "step": d.step_id,
             "error": d.error[:200], "failed": when(d.failed_at, seconds=True)}
            for d in letters
        ]  # fmt: skip

    @rx.event
    def set_flow(self, value: str) -> None:
        # Only a flow the list offered: anything else (a stale or forged event) shows every flow.
        self.flow = value if value in {i for i, _ in self.flow_options} else ANY
        self._list()
        self._dead_letters()  # read when the flow changes, not at every filter or page

    @rx.event
    def set_status(self, value: str) -> None:
        self.status = value if value in STATUSES else ANY
        self._list()

    @rx.event
    def set_trigger(self, value: str) -> None:
        self.trigger = value if value in TRIGGERS else ANY
        self._list()

    @rx.event
    def set_period(self, value: str) -> None:
        self.period = value if value in PERIODS else "7d"
        self._list()

    @rx.event
    def set_text(self, value: str) -> None:
        self.text = value
        self._list()

    @rx.event
    def set_include_tests(self, value: bool) -> None:
        self.include_tests = value
        self._list()

    @rx.event
    def go_older(self) -> None:
        if self.older:
            self._list(older_than=self.older)

    @rx.event
    def go_newer(self) -> None:
        if self.newer:
            self._list(newer_than=self.newer)

    @rx.event
    def go_newest(self) -> None:
        self._list()

    @rx.event
    def replay_letter(self, dead_id: str):
        self.error = self._refusal("replay dead letters")
        if self.error:
            return None
        ctx = get_context()
        try:
            run_id = run_service.replay_dead_letter(ctx.db, ctx.bus, uuid.UUID(self.tenant_id), dead_id,
                                                    user_id=uuid.UUID(self.user_id) if self.user_id else None)  # fmt: skip
        except HubError as exc:
            self.error = str(exc)
            self._dead_letters()
            return None
        return rx.redirect(f"/runs/{run_id}")

    @rx.event
    def discard_letter(self, dead_id: str):
        self.error = self._refusal("discard dead letters")
        if self.error:
            return None
        ctx = get_context()
        try:
            run_service.discard_dead_letter(ctx.db, ctx.bus, uuid.UUID(self.tenant_id), dead_id,
                                            user_id=uuid.UUID(self.user_id) if self.user_id else None)  # fmt: skip
        except HubError as exc:
            self.error = str(exc)
        self._dead_letters()
        return rx.toast.success("Discarded.") if not self.error else None


def _filters() -> rx.Component:
    return rx.hstack(
        rx.select.root(
            rx.select.trigger(placeholder="Any flow", data_testid="runs-flow"),
            rx.select.content(
                rx.select.item("Any flow", value=ANY),
                rx.foreach(RunsState.flow_options, lambda o: rx.select.item(o[1], value=o[0])),
            ),
            value=RunsState.flow,
            on_change=RunsState.set_flow,
        ),
        option_select(RunsState.status, RunsState.set_status, STATUSES, "runs-status"),
        option_select(RunsState.trigger, RunsState.set_trigger, TRIGGERS, "runs-trigger"),
        option_select(RunsState.period, RunsState.set_period, {k: v[0] for k, v in PERIODS.items()}, "runs-period"),
        rx.input(placeholder="Flow name, error or run id", value=RunsState.text, on_change=RunsState.set_text,
                 debounce_timeout=300, width="240px", data_testid="runs-text"),
        rx.checkbox("Test runs", checked=RunsState.include_tests, on_change=RunsState.set_include_tests),
        wrap="wrap",
        align="center",
        width="100%",
    )  # fmt: skip


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(rx.code(row["short"]), href="/runs/" + row["id"], data_testid="run-link")),
        rx.table.cell(row["flow"]),
        rx.table.cell(rx.badge(row["status"], color_scheme=row["color"], data_testid="run-row-status")),
        rx.table.cell(row["trigger"]),
        rx.table.cell(row["started"]),
        rx.table.cell(row["duration"]),
        rx.table.cell(rx.text(row["error"], size="1", color_scheme="red")),
        data_testid="run-row",
    )


def _pager() -> rx.Component:
    return rx.hstack(
        rx.button("Newest", variant="soft", on_click=RunsState.go_newest, disabled=RunsState.newer == ""),
        rx.button(rx.icon("chevron-left", size=14), "Newer", variant="soft", on_click=RunsState.go_newer,
                  disabled=RunsState.newer == "", data_testid="runs-newer"),
        rx.button("Older", rx.icon("chevron-right", size=14), variant="soft", on_click=RunsState.go_older,
                  disabled=RunsState.older == "", data_testid="runs-older"),
        justify="end",
        width="100%",
    )  # fmt: skip


def _dead_letters() -> rx.Component:
    return rx.cond(
        RunsState.dead.length() > 0,
        rx.vstack(
            rx.heading("Dead letters of this flow", size="4", margin_top="16px"),
            rx.text("Messages whose step failed for good. Replay runs the failed step and what follows with the "
                    "flow's current version.", size="2", color_scheme="gray"),
            rx.table.root(
                rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in
                                               ("Run", "Step", "Failed", "Error", "")])),
                rx.table.body(rx.foreach(RunsState.dead, lambda d: rx.table.row(
                    rx.table.cell(rx.link(rx.code(d["short"]), href="/runs/" + d["run"])),
                    rx.table.cell(d["step"]),
                    rx.table.cell(d["failed"]),
                    rx.table.cell(rx.text(d["error"], size="1", color_scheme="red")),
                    rx.table.cell(rx.hstack(
                        rx.button("Replay", size="1", on_click=RunsState.replay_letter(d["id"]),
                                  disabled=~RunsState.can_edit, data_testid="dead-replay"),
                        rx.button("Discard", size="1", variant="soft", color_scheme="red",
                                  on_click=RunsState.discard_letter(d["id"]), disabled=~RunsState.can_edit,
                                  data_testid="dead-discard"),
                    )),
                    data_testid="dead-row",
                ))),
                width="100%",
            ),
            width="100%",
        ),
    )  # fmt: skip


def runs_page() -> rx.Component:
    return page_layout(
        ROUTE,
        "Runs",
        "Every execution of your flows: status, timing, data and logs.",
        _filters(),
        rx.cond(RunsState.error != "", rx.callout(RunsState.error, icon="circle-alert", color_scheme="red",
                                                  width="100%", data_testid="runs-error")),
        rx.cond(
            RunsState.rows.length() > 0,
            rx.vstack(
                rx.table.root(
                    rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in (
                        "Run", "Flow", "Status", "Trigger", "Started (UTC)", "Duration", "Error")])),
                    rx.table.body(rx.foreach(RunsState.rows, _row)),
                    width="100%",
                    data_testid="runs-table",
                ),
                _pager(),
                width="100%",
            ),
            rx.text("No runs match.", color_scheme="gray", data_testid="runs-empty"),
        ),
        _dead_letters(),
    )  # fmt: skip
