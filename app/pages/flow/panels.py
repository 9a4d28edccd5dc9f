"""The designer's side panels: the selected node's configuration, the selected edge's condition, and, with
nothing selected, the flow itself (status, schedule, webhook)."""

from __future__ import annotations

import reflex as rx

from app.components.config_form import SELECT_STYLE, field_control, field_row
from app.components.notice import notice
from app.components.webhook_panel import webhook_panel
from app.pages.flow.state import DesignerState as S
from app.state.webhooks import WebhookState


def _setting(label: str, key: str, hint: str = "") -> rx.Component:
    return rx.vstack(
        rx.text(label, size="2", weight="medium"),
        rx.input(
            name=f"__{key}", default_value=S.node_settings[key], width="100%", data_testid=f"setting-{key}"
        ),
        rx.cond(hint != "", rx.text(hint, size="1", color_scheme="gray")),
        rx.cond(
            S.node_errors.contains(f"setting/{key}"),
            rx.text(S.node_errors[f"setting/{key}"], size="1", color_scheme="red", data_testid="field-error"),
        ),
        spacing="1",
        width="100%",
    )


def _credential_picker() -> rx.Component:
    return rx.cond(
        S.takes_credential,
        rx.vstack(
            rx.hstack(
                rx.text("Credential", size="2", weight="medium"),
                rx.spacer(),
                rx.link("New credential", href="/credentials", is_external=True, size="1"),
                width="100%",
            ),
            rx.el.select(
                rx.el.option("— none —", value=""),
                rx.foreach(S.credential_options, lambda o: rx.el.option(o[1], value=o[0])),
                value=S.node_credential,
                on_change=S.set_node_credential,
                style=SELECT_STYLE,
                data_testid="node-credential",
            ),
            spacing="1",
            width="100%",
        ),
    )


def _run_settings() -> rx.Component:
    """Folded by CSS, not unmounted: hidden inputs still go with the form, so applying the panel never resets
    settings one did not unfold."""
    return rx.vstack(
        rx.button(
            rx.icon(rx.cond(S.show_settings, "chevron-down", "chevron-right"), size=16),
            "Run settings",
            type="button",
            variant="ghost",
            on_click=S.toggle_settings,
            data_testid="run-settings",
        ),
        rx.vstack(
            rx.cond(S.takes_schedule, _setting("Schedule (cron, UTC)", "schedule", "e.g. */15 * * * *")),
            _setting("Attempts", "max_attempts", "1 means no retry"),
            _setting("First retry after (s)", "base_delay_s", "doubles on each retry, with jitter"),
            _setting("Longest wait between retries (s)", "max_delay_s"),
            _setting("Timeout (s)", "timeout_s"),
            _setting("Instances per worker", "instances", "runners kept side by side for this step"),
            rx.cond(
                S.choose_executor,
                rx.vstack(
                    rx.text("Executor", size="2", weight="medium"),
                    rx.el.select(
                        rx.el.option("the hub's default", value=""),
                        rx.el.option("process (sandboxed)", value="process"),
                        rx.el.option("docker (container)", value="docker"),
                        name="__executor",
                        default_value=S.node_settings["executor"],
                        style=SELECT_STYLE,
                        data_testid="setting-executor",
                    ),
                    spacing="1",
                    width="100%",
                ),
            ),
            spacing="3",
            width="100%",
            display=rx.cond(S.show_settings | (S.node_errors.length() > 0), "flex", "none"),
        ),
        spacing="2",
        width="100%",
    )


def _data(label: str, value: rx.Var, test_id: str) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="1", weight="medium", color_scheme="gray"),
        rx.code_block(value, language="json", font_size="11px", width="100%", max_height="200px",
                      overflow="auto", data_testid=test_id),
        spacing="1",
        width="100%",
    )  # fmt: skip


def _node_test() -> rx.Component:
    """The selected step in the last test run: what came in, what went out, what went wrong."""
    return rx.cond(
        S.node_test.contains("label"),
        rx.vstack(
            rx.divider(),
            rx.hstack(rx.text("Last test run", weight="medium", size="2"),
                      rx.text(S.node_test["label"], size="2", data_testid="node-test-label"), spacing="2"),
            rx.cond(S.node_test["error"] != "",
                    rx.callout(S.node_test["error"], icon="circle-alert", color_scheme="red", size="1",
                               width="100%", data_testid="node-test-error")),
            _data("Input", S.node_test["input"], "node-test-input"),
            _data("Output", S.node_test["output"], "node-test-output"),
            spacing="2",
            width="100%",
        ),
    )  # fmt: skip


def _dynamic_control(field: rx.Var) -> rx.Component:
    """A select whose choices the component lists on demand (with the chosen credential)."""
    return rx.hstack(
        rx.el.select(
            rx.el.option("—", value=""),
            rx.foreach(field["options"].to(list[list[str]]), lambda o: rx.el.option(o[1], value=o[0])),
            name=field["name"].to(str),
            default_value=field["value"].to(str),
            style=SELECT_STYLE,
            data_testid="field-" + field["name"].to(str),
        ),
        rx.button("Load choices", type="button", size="1", variant="soft", disabled=S.read_only,
                  on_click=S.load_choices(field["name"].to(str)), data_testid="load-choices"),
        width="100%",
        align="center",
    )  # fmt: skip


def _choices_control(field: rx.Var) -> rx.Component:
    """Several choices as checkboxes: a form sends every ticked one (a multiple select would send only one)."""
    name = field["name"].to(str)
    return rx.vstack(
        rx.foreach(
            field["options"].to(list[list[str]]),
            lambda o: rx.checkbox(o[1], name=name + "::" + o[0], default_checked=field["chosen"].to(list[str]).contains(o[0]),
                                  size="1", data_testid="choice-" + name + "-" + o[0]),
        ),
        spacing="1",
    )  # fmt: skip


def _node_field(field: rx.Var) -> rx.Component:
    """A field of the step; a JSONata field shows what it gives for the sample as one types."""
    name = field["name"].to(str)
    control = rx.match(
        field["kind"],
        ("dynamic", _dynamic_control(field)),
        ("multiselect", _choices_control(field)),
        field_control(field, S.preview_expression),
    )
    return rx.vstack(
        field_row(field, control, S.node_errors, "node/" + name),
        rx.cond(
            S.previews.contains(name),
            rx.vstack(
                rx.text("Preview on ", S.preview_sample, size="1", color_scheme="gray"),
                rx.code_block(S.previews[name], language="json", font_size="11px", width="100%",
                              max_height="160px", overflow="auto", data_testid="expression-preview"),
                spacing="1",
                width="100%",
            ),
        ),
        spacing="1",
        width="100%",
    )  # fmt: skip


def node_panel() -> rx.Component:
    return rx.vstack(
        rx.heading(S.node_title, size="3", data_testid="node-panel-title"),
        rx.text(S.selected_node, size="1", color_scheme="gray", font_family="monospace"),
        rx.cond(S.node_help != "", rx.text(S.node_help, size="2", color_scheme="gray")),
        rx.form(
            rx.vstack(
                rx.vstack(
                    rx.text("Name on the canvas", size="2", weight="medium"),
                    rx.input(name="__name", default_value=S.node_name, width="100%", data_testid="node-name"),
                    spacing="1",
                    width="100%",
                ),
                rx.foreach(S.node_fields, _node_field),
                _credential_picker(),
                _run_settings(),
                rx.button("Apply", type="submit", disabled=S.read_only, data_testid="apply-node"),
                spacing="3",
                width="100%",
            ),
            key=S.node_form_key,
            on_submit=S.save_node,
            reset_on_submit=False,
            width="100%",
        ),
        _node_test(),
        rx.cond(S.node_component == "webhook", rx.box(webhook_panel(S.listen_for_event), width="100%")),
        spacing="2",
        width="100%",
        data_testid="node-panel",
    )


def edge_panel() -> rx.Component:
    return rx.vstack(
        rx.heading("Connection", size="3"),
        rx.text(S.selected_source, " → ", S.selected_target, size="2", font_family="monospace"),
        rx.text(
            "A JSONata condition on the message the first step emitted: the message goes this way when it is "
            "true. Empty: always. After a router set to 'first', only the first matching connection is taken.",
            size="2",
            color_scheme="gray",
        ),
        rx.form(
            rx.vstack(
                rx.text_area(
                    name="condition",
                    default_value=S.edge_condition,
                    font_family="monospace",
                    placeholder="e.g. amount > 100",
                    width="100%",
                    data_testid="edge-condition",
                ),
                rx.button("Apply", type="submit", disabled=S.read_only, data_testid="apply-edge"),
                spacing="2",
                width="100%",
            ),
            key=S.selected_source + "->" + S.selected_target + S.edge_condition,
            on_submit=S.save_edge,
            reset_on_submit=False,
            width="100%",
        ),
        spacing="2",
        width="100%",
        data_testid="edge-panel",
    )


def _upgrades() -> rx.Component:
    """Newer versions of the components this flow pins: what changed, and the upgrade (never automatic)."""
    return rx.cond(
        S.upgrades.length() > 0,
        rx.card(
            rx.vstack(
                rx.text("Component updates", weight="medium"),
                rx.foreach(
                    S.upgrades,
                    lambda u: rx.vstack(
                        rx.hstack(
                            rx.text(u["title"], " ", u["pinned"], " → ", u["latest"], size="2", weight="medium"),
                            rx.spacer(),
                            rx.button("Upgrade", size="1", on_click=S.upgrade_component(u["component"].to(str)),
                                      disabled=S.read_only, data_testid="upgrade-component"),
                            width="100%", align="center",
                        ),
                        rx.unordered_list(rx.foreach(u["changes"].to(list[str]), lambda c: rx.list_item(c)),
                                          font_size="12px", data_testid="upgrade-changes"),
                        spacing="1", width="100%",
                    ),
                ),
                spacing="2",
                width="100%",
            ),
            width="100%",
            data_testid="component-upgrades",
        ),
    )  # fmt: skip


def flow_panel() -> rx.Component:
    return rx.vstack(
        rx.heading("This flow", size="3"),
        rx.text(
            "Drag steps from the palette, connect them, click one to configure it. Save publishes a new version "
            "when the flow has no problems.",
            size="2",
            color_scheme="gray",
        ),
        _status_reason(),
        _upgrades(),
        notice(WebhookState.standing, icon="shield_alert", color="orange", test_id="flow-standing"),
        _schedule(),
        webhook_panel(S.listen_for_event),
        spacing="3",
        width="100%",
        data_testid="flow-panel",
    )


def _status_reason() -> rx.Component:
    return rx.cond(
        WebhookState.status_reason != "",
        rx.cond(
            WebhookState.flow_status == "error",
            rx.callout(WebhookState.status_reason, icon="triangle_alert", color_scheme="red", width="100%",
                       data_testid="flow-status-reason"),
            rx.hstack(  # starting or stopping: a worker is on it
                rx.spinner(size="2"),
                rx.text(WebhookState.status_reason, size="2", color_scheme="gray"),
                align="center",
                data_testid="flow-status-reason",
            ),
        ),
    )  # fmt: skip


def _schedule() -> rx.Component:
    return rx.cond(
        WebhookState.schedule_words != "",
        rx.card(
            rx.vstack(
                rx.hstack(
                    rx.text("Schedule", weight="medium"),
                    rx.code(WebhookState.schedule),
                    align="center",
                ),
                rx.text(WebhookState.schedule_words, size="2", data_testid="schedule-words"),
                rx.cond(
                    WebhookState.next_ticks.length() > 0,
                    rx.text(
                        "Next: ",
                        rx.foreach(
                            WebhookState.next_ticks, lambda t: rx.badge(t, variant="soft", margin_right="4px")
                        ),
                        size="2",
                        data_testid="next-ticks",
                    ),
                ),
                rx.text(
                    "Times are UTC, on the wall clock (as cron). Ticks skipped while the previous run was still "
                    "running: ",
                    WebhookState.ticks_skipped,
                    size="1",
                    color_scheme="gray",
                ),
                spacing="2",
            ),
            width="100%",
            data_testid="flow-schedule",
        ),
    )


def side_panel() -> rx.Component:
    return rx.box(
        rx.cond(
            S.selected_node != "",
            node_panel(),
            rx.cond(S.selected_source != "", edge_panel(), flow_panel()),
        ),
        width="340px",
        min_width="340px",
        height="100%",
        overflow_y="auto",
        padding="12px",
        border_left=f"1px solid {rx.color('gray', 5)}",
    )
