"""The flow page: the designer's canvas between the palette and the side panel, with saving, versions,
activation and export above it."""

from __future__ import annotations

import json
import uuid

import reflex as rx

from app.context import get_context
from app.errors import HubError
from app.pages.flow.panels import side_panel
from app.pages.flow.state import DesignerState as S
from app.services import templates
from app.services.accounts import slugify
from app.services.flow_export import export_flow
from app.state.webhooks import WebhookState
from app.templates.layout import workspace_layout
from designer.canvas import flow_designer

ROUTE = "/flows/[flow_id]"
CANVAS_HEIGHT = "calc(100vh - 150px)"


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

    @rx.event
    def save_as_template(self):
        """The draft into this tenant's templates: credentials become slots, pasted secrets are masked."""
        self.error = ""
        if self.require_login() is not None:
            self.error = "Your session has ended; log in again."
            return None
        ctx = get_context()
        try:
            view = templates.save_flow_as_template(ctx.db, ctx.vault, uuid.UUID(self.tenant_id), self._user(),
                                                   uuid.UUID(self.current_flow_id))  # fmt: skip
        except (HubError, ValueError) as exc:
            self.error = str(exc)
            return None
        return rx.toast.success(f"Saved as the template {view.name!r} (see Templates).")


def _versions() -> rx.Component:
    def row(version: rx.Var) -> rx.Component:
        return rx.table.row(
            rx.table.cell(version["number"]),
            rx.table.cell(version["author"]),
            rx.table.cell(version["saved_at"]),
            rx.table.cell(rx.cond(version["current"] != "", rx.badge("published", color_scheme="green"))),
            rx.table.cell(
                rx.dialog.close(
                    rx.button("View", size="1", variant="soft", on_click=S.view_version(version["number"]),
                              data_testid="view-version")
                )
            ),
        )  # fmt: skip

    return rx.dialog.root(
        rx.dialog.trigger(
            rx.button("Versions", variant="soft", color_scheme="gray", on_click=S.load_versions,
                      data_testid="versions")
        ),
        rx.dialog.content(
            rx.dialog.title("Versions"),
            rx.dialog.description("Each save without problems is a version; runs use the published one.", size="2"),
            rx.cond(
                S.versions.length() > 0,
                rx.table.root(
                    rx.table.header(rx.table.row(*[rx.table.column_header_cell(h)
                                                   for h in ("#", "Saved by", "When", "", "")])),
                    rx.table.body(rx.foreach(S.versions, row)),
                    width="100%",
                    data_testid="versions-table",
                ),
                rx.text("Not saved as a version yet.", color_scheme="gray"),
            ),
            rx.hstack(rx.dialog.close(rx.button("Close", variant="soft", color_scheme="gray")), justify="end",
                      margin_top="12px"),
            max_width="640px",
        ),
    )  # fmt: skip


def _test_run() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.trigger(
            rx.button(rx.icon("flask-conical", size=16), "Test run", variant="soft", on_click=S.open_test,
                      disabled=~WebhookState.can_edit, data_testid="test-run")
        ),
        rx.dialog.content(
            rx.dialog.title("Test run"),
            rx.dialog.description(
                "Runs the canvas as it is now (saved or not) once, in test mode, without activating the flow. "
                "The sample is what the trigger emits: for a webhook, the request the test URL captured last.",
                size="2",
            ),
            rx.text_area(value=S.test_input, on_change=S.set_test_input, font_family="monospace", rows="10",
                         width="100%", margin_top="8px", data_testid="test-input"),
            rx.cond(S.test_input_error != "", rx.text(S.test_input_error, color_scheme="red", size="2",
                                                      data_testid="test-input-error")),
            rx.hstack(
                rx.dialog.close(rx.button("Close", variant="soft", color_scheme="gray")),
                rx.button("Run", on_click=S.run_test, data_testid="run-test"),
                justify="end", spacing="3", margin_top="12px",
            ),
            max_width="640px",
        ),
    )  # fmt: skip


def _activation() -> rx.Component:
    return rx.cond(
        WebhookState.active | (WebhookState.flow_status == "starting"),
        rx.button("Deactivate", variant="soft", color_scheme="gray", on_click=WebhookState.deactivate,
                  disabled=~WebhookState.can_edit, data_testid="deactivate"),
        rx.button("Activate", on_click=S.activate_design, disabled=~WebhookState.can_edit, data_testid="activate"),
    )  # fmt: skip


def _header() -> rx.Component:
    return rx.hstack(
        rx.link(rx.icon("arrow-left", size=18), href="/flows", color_scheme="gray", data_testid="back-to-flows"),
        rx.heading(WebhookState.flow_name, size="5", data_testid="flow-name"),
        rx.badge(WebhookState.flow_status, color_scheme=WebhookState.status_color, size="2",
                 data_testid="flow-status"),
        rx.cond(
            WebhookState.version_number > 0,
            rx.text("published version ", WebhookState.version_number, size="2", color_scheme="gray",
                    data_testid="published-version"),
            rx.text("not published yet", size="2", color_scheme="gray", data_testid="published-version"),
        ),
        rx.cond(S.dirty, rx.badge("unsaved changes", color_scheme="amber", data_testid="unsaved")),
        rx.cond(S.problem_count > 0,
                rx.badge(S.problem_count, " problem(s)", color_scheme="red", data_testid="problem-count")),
        rx.cond(S.test_status != "",
                rx.badge("test run: ", S.test_status, color_scheme=rx.cond(S.test_status == "succeeded", "green",
                                                                            rx.cond(S.test_status == "failed", "red",
                                                                                    "gray")),
                         data_testid="test-status")),
        rx.spacer(),
        _test_run(),
        _versions(),
        rx.button("Export", variant="soft", color_scheme="gray", on_click=FlowExportState.export,
                  data_testid="export-flow"),
        rx.button("Save as template", variant="soft", color_scheme="gray", on_click=FlowExportState.save_as_template,
                  disabled=S.read_only, data_testid="save-as-template"),
        rx.button("Save", on_click=S.save, disabled=S.read_only, variant="solid", color_scheme="indigo",
                  data_testid="save-flow"),
        _activation(),
        align="center",
        width="100%",
        spacing="3",
    )  # fmt: skip


def _messages() -> rx.Component:
    return rx.fragment(
        rx.cond(S.viewing_version > 0,
                rx.callout.root(
                    rx.callout.icon(rx.icon("history")),
                    rx.callout.text(
                        "Version ", S.viewing_version, " is shown read-only. ",
                        rx.button("Restore it into the draft", size="1", on_click=S.restore_version,
                                  disabled=~WebhookState.can_edit, data_testid="restore-version"),
                        " ",
                        rx.button("Back to the draft", size="1", variant="soft", on_click=S.back_to_draft,
                                  data_testid="back-to-draft"),
                    ),
                    color_scheme="blue", width="100%", data_testid="viewing-version",
                )),
        rx.cond(S.save_message != "", rx.callout(S.save_message, icon="info", width="100%", size="1",
                                                   color_scheme=rx.cond(S.conflict, "red", "gray"),
                                                   data_testid="save-message")),
        rx.cond(WebhookState.error != "", rx.callout(WebhookState.error, icon="circle-alert", color_scheme="red",
                                                      width="100%", size="1", data_testid="flow-error")),
        rx.cond(S.canvas_error != "", rx.callout(S.canvas_error, icon="circle-alert", color_scheme="orange",
                                                  width="100%", size="1", data_testid="canvas-error")),
        _conflict(),
    )  # fmt: skip


def _conflict() -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Someone else saved this flow"),
            rx.alert_dialog.description(
                S.save_message,
                " Take their version (your changes on this page are dropped), or keep yours as a new flow.",
                data_testid="conflict-message",
            ),
            rx.hstack(
                rx.alert_dialog.action(rx.button("Reload their version", variant="soft", on_click=S.reload_draft,
                                                 data_testid="conflict-reload")),
                rx.alert_dialog.action(rx.button("Save mine as a copy", on_click=S.save_as_copy,
                                                 data_testid="conflict-copy")),
                justify="end", spacing="3", margin_top="16px",
            ),
        ),
        open=S.conflict,
    )  # fmt: skip


def _problems() -> rx.Component:
    return rx.cond(
        S.problem_count > 0,
        rx.box(
            rx.foreach(
                S.problems,
                lambda p: rx.hstack(
                    rx.cond(p["node"] != "",
                            rx.link(p["node"], on_click=S.select_item({"node": p["node"]}), font_family="monospace",
                                    size="1")),
                    rx.text(p["message"], size="1"),
                    spacing="2",
                ),
            ),
            max_height="90px",
            overflow_y="auto",
            width="100%",
            padding_x="8px",
            data_testid="problems",
        ),
    )  # fmt: skip


def _canvas() -> rx.Component:
    return rx.box(
        flow_designer(
            nodes=S.nodes,
            edges=S.edges,
            palette=S.palette,
            read_only=S.read_only,
            dirty=S.dirty,
            fit_signal=S.fit_signal,
            selected_id=S.selected_node,
            on_nodes_moved=S.nodes_moved,
            on_connect_nodes=S.connect_nodes,
            on_delete_items=S.delete_items,
            on_select_item=S.select_item,
            on_add_component=S.add_component,
            on_copy_nodes=S.copy_nodes,
            on_paste_nodes=S.paste_nodes,
            on_undo=S.undo,
            on_redo=S.redo,
            on_layout=S.auto_layout,
        ),
        flex="1",
        min_width="0",
        height="100%",
    )


def flow_page() -> rx.Component:
    return workspace_layout(
        "/flows",
        rx.cond(
            WebhookState.flow_name != "",
            rx.vstack(
                _header(),
                _messages(),
                rx.hstack(
                    _canvas(),
                    side_panel(),
                    spacing="0",
                    width="100%",
                    height=CANVAS_HEIGHT,
                    border=f"1px solid {rx.color('gray', 5)}",
                    border_radius="8px",
                    overflow="hidden",
                ),
                _problems(),
                spacing="2",
                width="100%",
            ),
            rx.cond(
                WebhookState.error != "",
                rx.callout(
                    WebhookState.error, icon="circle-alert", color_scheme="red", data_testid="flow-missing"
                ),
                rx.center(rx.spinner(size="3"), height="50vh"),
            ),
        ),
    )
