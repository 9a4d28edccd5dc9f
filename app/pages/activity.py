"""Activity (hub administrators): each tenant's queue, running steps, worker time and throttled requests."""

from __future__ import annotations

import uuid

import reflex as rx

from app.components.notice import notice
from app.context import get_context
from app.errors import HubError
from app.services import egress, retention
from app.services.activity import activity, held_back
from app.state.auth import AuthState
from app.templates.layout import page_layout

ROUTE = "/activity"


def _seconds(ms: float) -> str:
    return f"{ms / 1000:,.1f} s"


def _throttled(counts: dict[str, int] | None) -> str:
    if not counts:
        return "0"
    return ", ".join(f"{count:,} {reason}" for reason, count in sorted(counts.items()))


class ActivityState(AuthState):
    workers: int = 0
    rows: list[dict[str, str]] = []
    held: list[dict[str, str]] = []
    retention: dict[str, str] = {}  # the last retention job's figures; empty before its first run
    egress_configured: str = ""  # HUB_EGRESS_ALLOW, one entry a line
    egress_added: str = ""  # what administrators added here, one entry a line
    egress_error: str = ""
    egress_saved: bool = False
    error: str = ""

    def _load_egress(self) -> None:
        ctx = get_context()
        view = egress.egress_view(ctx.db, ctx.settings.egress_allow)
        self.egress_configured = "\n".join(view.configured) or "(none)"
        self.egress_added = "\n".join(view.added)

    @rx.event
    def save_egress(self, form: dict[str, str]):
        redirect = self.require_login()
        if redirect is not None:
            return redirect
        self.egress_error, self.egress_saved = "", False
        ctx = get_context()
        try:
            egress.update_egress(ctx.db, ctx.redis, form.get("egress_added", ""),
                                 actor_user_id=uuid.UUID(self.user_id) if self.user_id else None,
                                 actor_is_superuser=self.is_superuser)  # fmt: skip
        except HubError as exc:
            self.egress_error = str(exc)
            return None
        self._load_egress()
        self.egress_saved = True
        return None

    @rx.event
    def load(self):
        return self.refresh()

    @rx.event
    def refresh(self):
        # The session again, not the flags of when the page loaded: the session may be gone, the admin demoted.
        redirect = self.require_login()
        if redirect is not None:
            return redirect
        ctx = get_context()
        try:
            self.workers, found = activity(ctx.db, ctx.redis, is_superuser=self.is_superuser)
        except HubError as exc:
            self.error, self.rows, self.held = str(exc), [], []
            return None
        self.error = ""
        self.held = [
            {"tenant": h.tenant, "flow": h.flow, "level": h.standing.label, "reason": h.standing.reason,
             "since": h.standing.since.replace("T", " ").replace("+00:00", " UTC")}
            for h in held_back(ctx.db, ctx.redis, is_superuser=self.is_superuser)
        ]  # fmt: skip
        self.retention = _retention_figures(ctx.redis)
        self._load_egress()
        self.rows = [
            {
                "name": row.name,
                "weight": str(row.weight),
                "backlog": f"{row.figures.backlog:,}",
                "running": f"{row.figures.running:,}",
                "minute": _seconds(row.figures.usage.worker_ms_minute),
                "hour": _seconds(row.figures.usage.worker_ms_hour),
                "steps": f"{row.figures.usage.steps_minute:,}",
                "throttled": _throttled(row.figures.usage.throttled_hour),
                "dead": f"{row.figures.dead:,}",
            }
            for row in found
        ]
        return None


def _retention_figures(client) -> dict[str, str]:
    last = retention.last_report(client)
    if last is None:
        return {}
    total = retention.totals(client)
    return {
        "when": last.started_at[:19].replace("T", " ") + " UTC",
        "runs": f"{last.runs:,}", "steps": f"{last.steps:,}", "logs": f"{last.logs:,}",
        "freed": f"{last.bytes_freed / 1_048_576:,.1f} MB", "seconds": f"{last.seconds:,.1f} s",
        "total_runs": f"{total.get('runs', 0):,}", "total_freed": f"{total.get('bytes_freed', 0) / 1_048_576:,.1f} MB",
        "how": "file shrank by" if last.database == "sqlite" else "rows made reusable:",
    }  # fmt: skip


COLUMNS = (
    ("name", "Tenant"),
    ("weight", "Weight"),
    ("backlog", "Queued"),
    ("running", "Running"),
    ("minute", "Worker time, last minute"),
    ("hour", "Worker time, last hour"),
    ("steps", "Steps, last minute"),
    ("throttled", "Throttled, last hour"),
    ("dead", "Dead letters"),
)


def _table() -> rx.Component:
    return rx.table.root(
        rx.table.header(rx.table.row(*[rx.table.column_header_cell(label) for _, label in COLUMNS])),
        rx.table.body(
            rx.foreach(
                ActivityState.rows,
                lambda row: rx.table.row(
                    *[rx.table.cell(row[key], data_testid=f"activity-{key}") for key, _ in COLUMNS],
                    data_testid="activity-row",
                ),
            )
        ),
        variant="surface",
        width="100%",
        data_testid="activity-table",
    )


def _held_back() -> rx.Component:
    return rx.cond(
        ActivityState.held.length() > 0,
        rx.vstack(
            rx.text("Flows held back by the hub", weight="medium", padding_top="8px"),
            rx.foreach(
                ActivityState.held,
                lambda h: rx.callout(
                    rx.text(rx.text.strong(h["tenant"], " / ", h["flow"]), ": ", h["level"], " since ", h["since"],
                            " (", h["reason"], ")"),
                    icon="shield_alert",
                    color_scheme=rx.cond(h["level"] == "suspended", "red", "orange"),
                    width="100%",
                    data_testid="held-back",
                ),
            ),
            rx.text(
                "Flows that keep hitting their limits or crashing their runners go to low priority, then are "
                "throttled, then suspended; calm minutes bring them back (a suspended flow waits for its owners).",
                size="2",
                color_scheme="gray",
            ),
            width="100%",
        ),
    )  # fmt: skip


def _retention() -> rx.Component:
    r = ActivityState.retention
    return rx.vstack(
        rx.text("Run retention", weight="medium", padding_top="8px"),
        rx.cond(
            r.contains("when"),
            rx.text("Last job ", r["when"], ": deleted ", r["runs"], " runs, ", r["steps"], " step executions and ",
                    r["logs"], " log lines in ", r["seconds"], "; ", r["how"], " ", r["freed"], ". Since the hub "
                    "began: ", r["total_runs"], " runs, ", r["total_freed"], ".", size="2",
                    data_testid="retention-figures"),
            rx.text("The hourly retention job has not run yet.", size="2", color_scheme="gray",
                    data_testid="retention-figures"),
        ),
        width="100%",
    )  # fmt: skip


def _egress() -> rx.Component:
    return rx.vstack(
        rx.text("Internal hosts steps may call", weight="medium", padding_top="8px"),
        rx.text("Steps may not call private, loopback or link-local addresses (the hub's own network, cloud "
                "metadata). Allow internal hosts and networks here, one per line: api.corp.example, "
                "*.corp.example, 10.1.2.3 or 10.1.0.0/16. Workers apply a change within a second.", size="2",
                color_scheme="gray"),
        rx.text("From the configuration (HUB_EGRESS_ALLOW): ", rx.code(ActivityState.egress_configured), size="2"),
        rx.form(
            rx.vstack(
                rx.text_area(name="egress_added", default_value=ActivityState.egress_added, rows="4",
                             placeholder="one host or network a line", width="32em", data_testid="egress-added"),
                rx.button("Save the allow list", type="submit", data_testid="save-egress"),
            ),
            on_submit=ActivityState.save_egress,
            reset_on_submit=False,
        ),
        notice(ActivityState.egress_error, icon="triangle_alert", color="red", test_id="egress-error"),
        rx.cond(ActivityState.egress_saved, rx.text("Saved: in force on every worker within a second.", size="2",
                                                    color_scheme="green", data_testid="egress-saved")),
        width="100%",
    )  # fmt: skip


def activity_page() -> rx.Component:
    return page_layout(
        ROUTE,
        "Activity",
        "What every tenant is doing now: its queue, its running steps and the worker time it used.",
        rx.cond(
            ActivityState.error != "",
            rx.callout(ActivityState.error, icon="shield_alert", color_scheme="red", data_testid="activity-error"),
            rx.vstack(
                rx.hstack(
                    rx.text(ActivityState.workers, " workers running", data_testid="activity-workers"),
                    rx.spacer(),
                    rx.button(rx.icon("refresh-cw", size=16), "Refresh", variant="soft",
                              on_click=ActivityState.refresh, data_testid="activity-refresh"),
                    width="100%",
                    align="center",
                ),
                _table(),
                _held_back(),
                _retention(),
                _egress(),
                rx.text(
                    "Worker time is shared between busy tenants by their weight. Throttled: webhook requests "
                    "refused by a tenant's rate limit or backlog quota. The same figures are at /metrics for "
                    "Prometheus.",
                    size="2",
                    color_scheme="gray",
                ),
                width="100%",
            ),
        ),
    )  # fmt: skip
