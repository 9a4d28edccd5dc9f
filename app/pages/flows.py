"""Flows: the tenant's integration flows. Create, rename, duplicate, delete, activate; search and sort."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import reflex as rx

from app.components.formatting import RUN_COLORS, when
from app.context import HubContext, get_context
from app.control.flow_jobs import enqueue_converge
from app.errors import HubError
from app.services import flows
from app.services.flow_list import SORTS, list_flows
from app.services.run_history import failed_counts
from app.state.auth import EDIT_ROLES, AuthState
from app.state.webhooks import STATUS_COLORS
from app.templates.layout import page_layout

ROUTE = "/flows"
SORT_LABELS = {"updated": "Last changed", "created": "Created", "name": "Name", "status": "Status",
               "last_run": "Last run"}  # fmt: skip


class FlowsState(AuthState):
    rows: list[dict[str, str]] = []
    search: str = ""
    sort: str = "updated"
    error: str = ""
    new_name: str = ""
    renaming: str = ""  # the id of the flow being renamed
    rename_to: str = ""

    @rx.var
    def can_edit(self) -> bool:
        return self.role in EDIT_ROLES

    @rx.event
    def load(self):
        redirect = self.require_login()
        if redirect is not None or not self.tenant_id:
            self.rows = []
            return redirect
        self._list()
        return None

    def _list(self) -> None:
        if not self.tenant_id:
            self.rows = []
            return
        db, tenant_id = get_context().db, uuid.UUID(self.tenant_id)
        found = list_flows(db, tenant_id, self.search,
                           self.sort if self.sort in SORTS else "updated")  # type: ignore[arg-type]  # fmt: skip
        failed = failed_counts(db, tenant_id, dt.datetime.now(dt.UTC) - dt.timedelta(hours=24))
        self.rows = [
            {
                "id": str(f.id),
                "name": f.name,
                "status": f.status,
                "status_color": STATUS_COLORS.get(f.status, "gray"),
                "trigger": f.trigger,
                "version": str(f.version) if f.version else "—",
                "last_run": f.last_run_status.replace("_", " "),
                "last_run_color": RUN_COLORS.get(f.last_run_status, "gray"),
                "last_run_at": when(f.last_run_at),
                "created": when(f.created_at),
                "updated": when(f.updated_at),
                "running": "yes" if f.status in ("active", "starting") else "",
                "failed_24h": str(failed.get(f.id, "")),
            }
            for f in found
        ]

    @rx.event
    def set_search(self, value: str) -> None:
        self.search = value
        self._list()

    @rx.event
    def set_sort(self, value: str) -> None:
        self.sort = value if value in SORTS else "updated"
        self._list()

    @rx.event
    def set_new_name(self, value: str) -> None:
        self.new_name = value

    @rx.event
    def set_rename_to(self, value: str) -> None:
        self.rename_to = value

    def _change(self, change: Callable[[HubContext, uuid.UUID, uuid.UUID | None], Any]) -> Any:
        """Run a change as the user, with the role checked now (not as it was when the page loaded)."""
        self.error = self._refusal("change flows")
        if self.error:
            return None
        try:
            result = change(
                get_context(), uuid.UUID(self.tenant_id), uuid.UUID(self.user_id) if self.user_id else None
            )
        except HubError as exc:
            self.error = str(exc)
            return None
        except ValueError:  # an id the page did not send (a stale or forged event)
            self.error = "This flow does not exist (or belongs to another tenant); reload the page."
            return None
        self._list()
        return result

    @rx.event
    def create(self):
        name = self.new_name
        created = self._change(lambda c, t, u: flows.create_flow(c.db, t, name, user_id=u))
        if created is None:
            return None
        self.new_name = ""
        return rx.redirect(f"/flows/{created.id}")

    @rx.event
    def start_rename(self, flow_id: str, name: str) -> None:
        self.renaming, self.rename_to = flow_id, name

    @rx.event
    def rename(self):
        flow_id, name = self.renaming, self.rename_to
        if (
            self._change(lambda c, t, u: flows.rename_flow(c.db, t, uuid.UUID(flow_id), name, user_id=u))
            is None
        ):
            return None
        self.renaming = ""
        return rx.toast.success("Renamed.")

    @rx.event
    def cancel_rename(self) -> None:
        self.renaming = ""

    @rx.event
    def duplicate(self, flow_id: str):
        copy = self._change(lambda c, t, u: flows.duplicate_flow(c.db, t, uuid.UUID(flow_id), user_id=u))
        return rx.toast.success(f"Copied as “{copy.name}” (inactive).") if copy is not None else None

    @rx.event
    def delete(self, flow_id: str):
        name = self._change(lambda c, t, u: flows.delete_flow(c.db, c.bus, t, uuid.UUID(flow_id), user_id=u,
                                                              enqueue=enqueue_converge(c.redis)))  # fmt: skip
        return rx.toast.success(f"“{name}” is deleted.") if name is not None else None

    @rx.event
    def toggle(self, flow_id: str, on: bool):
        """Activation is a worker's job (it starts the runners): the list shows 'starting' until it is done."""
        if on:
            done = self._change(lambda c, t, u: flows.request_activation(
                c.db, t, uuid.UUID(flow_id), enqueue=enqueue_converge(c.redis), user_id=u))  # fmt: skip
        else:
            done = self._change(lambda c, t, u: flows.request_deactivation(
                c.db, c.bus, c.components_for(t), t, uuid.UUID(flow_id), enqueue=enqueue_converge(c.redis),
                routes=c.routes, user_id=u))  # fmt: skip
        return FlowsState.follow if done is not None else None

    @rx.event(background=True)
    async def follow(self):
        """Refresh the list while a flow starts or stops (a worker does it), for at most a minute."""
        for _ in range(120):
            await asyncio.sleep(0.5)
            async with self:
                self._list()
                if not any(r["status"] in ("starting", "stopping") for r in self.rows):
                    return


def _new_flow() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.trigger(rx.button(rx.icon("plus", size=16), "New flow", disabled=~FlowsState.can_edit,
                                    data_testid="new-flow")),
        rx.dialog.content(
            rx.dialog.title("New flow"),
            rx.form(
                rx.vstack(
                    rx.input(placeholder="Name, e.g. Orders to the ERP", value=FlowsState.new_name,
                             on_change=FlowsState.set_new_name, width="100%", auto_focus=True,
                             data_testid="new-flow-name"),
                    rx.hstack(
                        rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray", type="button")),
                        rx.button("Create and open", type="submit", data_testid="create-flow"),
                        justify="end", spacing="3", width="100%",
                    ),
                    spacing="3",
                ),
                on_submit=lambda _: FlowsState.create(),
            ),
        ),
    )  # fmt: skip


def _rename_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Rename"),
            rx.form(
                rx.vstack(
                    rx.input(value=FlowsState.rename_to, on_change=FlowsState.set_rename_to, width="100%",
                             data_testid="rename-to"),
                    rx.hstack(
                        rx.button("Cancel", variant="soft", color_scheme="gray", type="button",
                                  on_click=FlowsState.cancel_rename),
                        rx.button("Rename", type="submit", data_testid="rename-confirm"),
                        justify="end", spacing="3", width="100%",
                    ),
                    spacing="3",
                ),
                on_submit=lambda _: FlowsState.rename(),
            ),
        ),
        open=FlowsState.renaming != "",
    )  # fmt: skip


def _actions(row: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.tooltip(rx.icon_button(rx.icon("pencil", size=14), size="1", variant="ghost",
                                  on_click=FlowsState.start_rename(row["id"], row["name"]),
                                  disabled=~FlowsState.can_edit, data_testid="rename-flow"), content="Rename"),
        rx.tooltip(rx.icon_button(rx.icon("copy", size=14), size="1", variant="ghost",
                                  on_click=FlowsState.duplicate(row["id"]), disabled=~FlowsState.can_edit,
                                  data_testid="duplicate-flow"), content="Duplicate"),
        rx.alert_dialog.root(
            rx.alert_dialog.trigger(rx.icon_button(rx.icon("trash-2", size=14), size="1", variant="ghost",
                                                   color_scheme="red", disabled=~FlowsState.can_edit,
                                                   data_testid="delete-flow")),
            rx.alert_dialog.content(
                rx.alert_dialog.title("Delete ", row["name"], "?"),
                rx.alert_dialog.description("Its versions, URLs and run records are deleted too. This cannot be "
                                            "undone."),
                rx.hstack(
                    rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", color_scheme="gray")),
                    rx.alert_dialog.action(rx.button("Delete", color_scheme="red",
                                                     on_click=FlowsState.delete(row["id"]),
                                                     data_testid="delete-flow-confirm")),
                    justify="end", spacing="3", margin_top="16px",
                ),
            ),
        ),
        spacing="3",
    )  # fmt: skip


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(row["name"], href="/flows/" + row["id"], data_testid="flow-link")),
        rx.table.cell(row["trigger"]),
        rx.table.cell(rx.hstack(
            rx.switch(checked=row["running"] != "", on_change=lambda on: FlowsState.toggle(row["id"], on),
                      disabled=~FlowsState.can_edit, data_testid="flow-toggle"),
            rx.badge(row["status"], color_scheme=row["status_color"], data_testid="flow-row-status"),
            align="center",
        )),
        rx.table.cell(row["version"]),
        rx.table.cell(rx.cond(row["last_run"] != "",
                              rx.hstack(rx.badge(row["last_run"], color_scheme=row["last_run_color"]),
                                        rx.text(row["last_run_at"], size="1", color_scheme="gray"), align="center"),
                              rx.text("never", size="1", color_scheme="gray"))),
        rx.table.cell(rx.cond(row["failed_24h"] != "",
                              rx.link(rx.badge(row["failed_24h"], " failed", color_scheme="red"),
                                      href="/runs?flow=" + row["id"] + "&status=failed&period=24h", data_testid="flow-failed"),
                              rx.text("—", color_scheme="gray"))),
        rx.table.cell(row["created"]),
        rx.table.cell(row["updated"]),
        rx.table.cell(_actions(row)),
        data_testid="flow-row",
    )  # fmt: skip


def flows_page() -> rx.Component:
    return page_layout(
        ROUTE,
        "Flows",
        "Integration flows of this tenant: a trigger and the steps that process its messages.",
        rx.hstack(
            rx.input(placeholder="Search by name", value=FlowsState.search, on_change=FlowsState.set_search,
                     debounce_timeout=250, width="280px", data_testid="flow-search"),
            rx.select.root(
                rx.select.trigger(data_testid="flow-sort"),
                rx.select.content(*[rx.select.item(label, value=key) for key, label in SORT_LABELS.items()]),
                value=FlowsState.sort,
                on_change=FlowsState.set_sort,
            ),
            rx.spacer(),
            _new_flow(),
            width="100%",
            align="center",
        ),
        rx.cond(FlowsState.error != "", rx.callout(FlowsState.error, icon="circle-alert", color_scheme="red",
                                                   width="100%", data_testid="flows-error")),
        _rename_dialog(),
        rx.cond(
            FlowsState.rows.length() > 0,
            rx.table.root(
                rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in (
                    "Name", "Trigger", "Status", "Version", "Last run", "Failed (24 h)", "Created", "Updated",
                    "")])),
                rx.table.body(rx.foreach(FlowsState.rows, _row)),
                width="100%",
                data_testid="flows-table",
            ),
            rx.cond(FlowsState.search != "", rx.text("No flow matches.", color_scheme="gray"),
                    rx.text("No flows yet: create one to open the designer.", color_scheme="gray")),
        ),
    )  # fmt: skip
