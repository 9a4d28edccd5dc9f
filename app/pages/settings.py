"""Settings: the current tenant's quotas (changed by hub administrators) and run retention."""

from __future__ import annotations

import uuid

import redis
import reflex as rx

from app.components.notice import notice
from app.context import get_context
from app.errors import HubError
from app.services import quotas, retention
from app.state.auth import AuthState
from app.templates.layout import page_layout
from runtime.executors.sandbox import sandbox_problem

ROUTE = "/settings"


def _in_force(name: str, value: int) -> str:
    if name == "weight":
        return str(value)
    return "no limit" if value == 0 else f"{value:,}"


class SettingsState(AuthState):
    sandbox_warning: str = ""  # for admins: why component runners are not sandboxed on this machine
    # One row per quota: name, label, this tenant's own value ("" = the default), the value in force.
    quota_rows: list[dict[str, str]] = []
    quota_error: str = ""
    quota_saved: bool = False
    # Run retention: this tenant's own values ("" = the hub's default), what is in force, what the job did.
    retention_days: str = ""
    retention_runs: str = ""
    retention_in_force: str = ""
    retention_default: str = ""
    retention_freed: str = ""
    retention_error: str = ""
    retention_saved: bool = False

    @rx.var
    def can_set_retention(self) -> bool:
        return self.role in ("owner", "admin")

    def _load_retention(self) -> None:
        ctx = get_context()
        tenant_id = uuid.UUID(self.tenant_id)
        view = retention.retention_of(ctx.db, tenant_id, retention.default_policy(ctx.settings))
        self.retention_days = "" if view.own_days is None else str(view.own_days)
        self.retention_runs = "" if view.own_runs is None else str(view.own_runs)
        self.retention_in_force = view.effective.describe()
        self.retention_default = view.default.describe()
        try:
            freed = retention.freed_for(retention.last_report(ctx.redis), tenant_id)
        except redis.RedisError:
            self.retention_freed = (
                "What the last retention job deleted cannot be read now (Redis does not answer)."
            )
            return
        self.retention_freed = (f"The last retention job deleted {freed.runs:,} runs of this tenant, with "
                                f"{freed.steps:,} step executions and {freed.logs:,} log lines.")  # fmt: skip

    @rx.event
    def save_retention(self, form: dict[str, str]):
        redirect = self.require_login()
        if redirect is not None:
            return redirect
        self.retention_error, self.retention_saved = "", False
        ctx = get_context()
        try:
            days = retention.parse_limit(form.get("retention_days", ""), "Days", retention.MAX_DAYS)
            runs = retention.parse_limit(form.get("retention_runs", ""), "Runs", retention.MAX_RUNS)
            retention.update_retention(ctx.db, uuid.UUID(self.tenant_id), days, runs,
                                       user_id=uuid.UUID(self.user_id) if self.user_id else None,
                                       default=retention.default_policy(ctx.settings))  # fmt: skip
        except HubError as exc:
            self.retention_error = str(exc)
            return None
        self._load_retention()
        self.retention_saved = True
        return None

    def _load_quotas(self) -> None:
        ctx = get_context()
        view = quotas.quotas_of(ctx.db, uuid.UUID(self.tenant_id), quotas.quota_defaults(ctx.settings))
        own = {"weight": view.weight, **view.own}
        self.quota_rows = [
            {
                "name": name,
                "label": label,
                "own": "" if own[name] is None else str(own[name]),
                "in_force": _in_force(name, getattr(view.effective, name)),
            }
            for name, label in quotas.LABELS.items()
        ]

    @rx.event
    def save_quotas(self, form: dict[str, str]):
        # The session again, not the flags of when the page loaded: the session may be gone, the admin demoted.
        redirect = self.require_login()
        if redirect is not None:
            return redirect
        self.quota_error, self.quota_saved = "", False
        ctx = get_context()
        try:
            quotas.update_quotas(
                ctx.db,
                ctx.redis,
                uuid.UUID(self.tenant_id),
                quotas.parse(form),
                actor_user_id=uuid.UUID(self.user_id),
                actor_is_superuser=self.is_superuser,
                defaults=quotas.quota_defaults(ctx.settings),
                bus=ctx.bus,
                components_for=ctx.components_for,
                routes=ctx.routes,
            )
        except HubError as exc:
            self.quota_error = str(exc)
            return None
        self._load_quotas()
        self.quota_saved = True
        return None

    @rx.event
    def load(self):
        redirect = self.require_login()
        if redirect is not None or not self.tenant_id:
            return redirect
        admin = self.role in ("owner", "admin") or self.is_superuser
        self.sandbox_warning = (sandbox_problem() or "") if admin else ""
        self.quota_error, self.quota_saved = "", False
        self.retention_error, self.retention_saved = "", False
        self._load_quotas()
        self._load_retention()
        return None


def _quota_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(row["label"])),
        rx.table.cell(
            rx.cond(
                AuthState.is_superuser,
                rx.input(
                    name=row["name"],
                    default_value=row["own"],
                    placeholder="default",
                    width="10em",
                    data_testid=f"quota-{row['name']}",
                ),
                rx.text(rx.cond(row["own"] == "", "default", row["own"])),
            )
        ),
        rx.table.cell(rx.text(row["in_force"], data_testid="quota-in-force")),
    )


def _quotas() -> rx.Component:
    table = rx.table.root(
        rx.table.header(
            rx.table.row(
                rx.table.column_header_cell("Quota"),
                rx.table.column_header_cell("This tenant"),
                rx.table.column_header_cell("In force"),
            )
        ),
        rx.table.body(rx.foreach(SettingsState.quota_rows, _quota_row)),
        variant="surface",
        width="100%",
        data_testid="quotas-table",
    )
    return rx.vstack(
        rx.text("Quotas", weight="medium", padding_top="8px"),
        rx.text(
            "Worker time is shared between busy tenants by weight; the limits hold across all workers. Empty "
            "means the hub's default.",
            size="2",
            color_scheme="gray",
        ),
        rx.form(
            rx.vstack(
                table,
                notice(SettingsState.quota_error, icon="triangle_alert", color="red", test_id="quota-error"),
                rx.cond(
                    SettingsState.quota_saved,
                    rx.text("Saved: in force on every worker and router now.", color_scheme="green", size="2",
                            data_testid="quota-saved"),
                ),
                rx.cond(
                    AuthState.is_superuser,
                    rx.button("Save quotas", type="submit", data_testid="save-quotas"),
                    rx.text("Hub administrators change these.", size="2", color_scheme="gray"),
                ),
                width="100%",
            ),
            on_submit=SettingsState.save_quotas,
            reset_on_submit=False,
            width="100%",
        ),
        width="100%",
    )  # fmt: skip


def _retention() -> rx.Component:
    return rx.vstack(
        rx.text("Run retention", weight="medium", padding_top="8px"),
        rx.text("Runs are kept for ", rx.text.strong(SettingsState.retention_in_force, data_testid="retention-in-force"),
                " (the hub's default: ", SettingsState.retention_default, "). An hourly job deletes older runs with "
                "their data and logs; runs still running are kept. Empty means the default, 0 no limit.", size="2",
                color_scheme="gray"),
        rx.form(
            rx.hstack(
                rx.input(name="retention_days", default_value=SettingsState.retention_days, placeholder="default",
                         width="8em", disabled=~SettingsState.can_set_retention, data_testid="retention-days"),
                rx.text("days", size="2"),
                rx.input(name="retention_runs", default_value=SettingsState.retention_runs, placeholder="default",
                         width="10em", disabled=~SettingsState.can_set_retention, data_testid="retention-runs"),
                rx.text("newest runs", size="2"),
                rx.button("Save retention", type="submit", disabled=~SettingsState.can_set_retention,
                          data_testid="save-retention"),
                align="center",
            ),
            on_submit=SettingsState.save_retention,
            reset_on_submit=False,
        ),
        notice(SettingsState.retention_error, icon="triangle_alert", color="red", test_id="retention-error"),
        rx.cond(SettingsState.retention_saved, rx.text("Saved: the next hourly job applies it.", size="2",
                                                       color_scheme="green", data_testid="retention-saved")),
        rx.text(SettingsState.retention_freed, size="2", color_scheme="gray"),
        width="100%",
    )  # fmt: skip


def settings_page() -> rx.Component:
    return page_layout(
        ROUTE,
        "Settings",
        "Your tenant's limits and how long it keeps runs.",
        notice(SettingsState.sandbox_warning, icon="shield_alert", color="amber", test_id="sandbox-warning"),
        rx.heading(rx.text.span("Tenant: "), rx.text.span(AuthState.tenant_name), size="4"),
        rx.text(
            "The people in it are on the ",
            rx.link("Members", href="/members"),
            " page; personal tokens for the REST API on ",
            rx.link("API tokens", href="/tokens"),
            ".",
            size="2",
            color_scheme="gray",
        ),
        _quotas(),
        _retention(),
    )
