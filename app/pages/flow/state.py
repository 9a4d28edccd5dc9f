"""The designer's state: the draft being edited, its undo history, what the canvas shows and the node panel.

The draft lives here between saves (a backend var, never sent whole to the browser); the canvas gets nodes and
edges drawn from it. Every edit goes through designer/edits.py, is recorded for undo, and is checked by the
compiler so that problems show on their nodes as one edits."""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from typing import Any

import pydantic
import reflex as rx

from app.components.config_form import field_view
from app.context import get_context
from app.control.flow_jobs import enqueue_converge
from app.errors import ConflictError, FlowInvalidError, HubError
from app.executors import verification_runners
from app.services import designer as service
from app.services import flows, test_runs, webhooks
from app.services.component_upgrades import newest_imported, upgrades
from app.services.credentials import list_credentials
from app.services.field_options import field_options
from app.services.field_values import cleaned_values, field_errors
from app.services.plans import pinned
from app.state.webhooks import WebhookState
from app.storage.models import FlowStatus
from designer import edits, layout
from designer.history import History
from designer.view import canvas_edges, canvas_nodes
from runtime.components.spec import ComponentResolver
from runtime.flows.expressions import ExpressionError, compile_expression, evaluate
from runtime.flows.schema import NodeSettings

TEST_WATCH_S = 600
PREVIEW_LIMIT = 4000
PREVIEW_TIMEOUT_S = 2.0
SETTING_INPUTS = (
    "max_attempts",
    "base_delay_s",
    "max_delay_s",
    "timeout_s",
    "instances",
    "executor",
    "schedule",
)


class DesignerState(WebhookState):
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    palette: list[dict[str, Any]] = []
    fit_signal: int = 0
    dirty: bool = False
    problems: list[dict[str, str]] = []  # {node, message}: the compiler's findings on the draft
    canvas_error: str = ""
    save_message: str = ""
    conflict: bool = False
    viewing_version: int = 0  # a saved version shown read-only; 0: the draft
    versions: list[dict[str, str]] = []
    # the node panel
    selected_node: str = ""
    node_component: str = ""
    node_form_key: str = ""  # changes whenever the panel shows other values, so the form starts afresh
    node_title: str = ""
    node_help: str = ""
    node_name: str = ""
    node_fields: list[dict[str, Any]] = []
    node_errors: dict[str, str] = {}
    credential_options: list[list[str]] = []  # [id, name]
    node_credential: str = ""
    takes_credential: bool = False
    node_settings: dict[str, str] = {}
    choose_executor: bool = False
    show_settings: bool = False
    takes_schedule: bool = False
    # the last test run: sample input, its state, and the selected node's data in it
    test_input: str = "{}"
    test_input_error: str = ""
    test_run_id: str = ""
    test_status: str = ""
    test_error: str = ""
    node_test: dict[str, str] = {}  # input, output, error, label of the selected node in the last test run
    upgrades: list[dict[str, Any]] = []  # newer versions of the pinned components, with what changed
    previews: dict[str, str] = {}  # JSONata field -> what it gives for the sample (or why it fails)
    preview_sample: str = ""  # which sample the previews use
    # the edge panel
    selected_source: str = ""
    selected_target: str = ""
    edge_condition: str = ""

    _graph: dict[str, Any] = {}
    _lock_version: int = 0
    _history: History = History()
    _clipboard: dict[str, Any] = {}
    _viewed: dict[str, Any] = {}  # the saved version shown read-only
    _loaded_for: str = ""  # "tenant/flow" the draft was read for: a tenant switch must not edit it elsewhere
    _choices: dict[str, dict[str, str]] = {}  # "node/field" -> the choices the component listed last
    # node -> its outcome in the last test run (see test_runs.StepOutcome)
    _runs: dict[str, dict[str, Any]] = {}

    @rx.var
    def read_only(self) -> bool:
        return self.viewing_version > 0 or not self.can_edit

    @rx.var
    def problem_count(self) -> int:
        return len(self.problems)

    # -- loading ------------------------------------------------------------------------------------------------
    @rx.event
    def load_designer(self):
        redirect = self.load_flow()
        if not self.flow_name or not self.tenant_id:
            self.nodes, self.edges = [], []
            return redirect
        if self.dirty and self._loaded_for == self._here():
            # Back on the flow after visiting another page of the hub: the unsaved draft is still the one to edit.
            self.save_message = (
                "Your unsaved changes are still here: save them, or reload the page to drop them."
            )
            self._redraw()
            return redirect
        self._read_draft()
        # A link from a run's step (/flows/<id>?node=<step>) opens the designer on that step.
        wanted = str(self.router.url.query_parameters.get("node", ""))
        if wanted and edits.node_by_id(self._draft(), wanted) is not None:
            self._select_node(wanted)
        return redirect

    def _here(self) -> str:
        return f"{self.tenant_id}/{self.current_flow_id}"

    def _read_draft(self) -> None:
        ctx = get_context()
        tenant_id, flow_id = self._ids()
        _, self._graph, self._lock_version = service.read_draft(ctx.db, tenant_id, flow_id)
        self._loaded_for = self._here()
        self._history = History()
        self._runs, self.test_run_id, self.test_status, self.test_error = {}, "", "", ""
        self._choices, self.versions, self.test_input, self.previews = {}, [], "{}", {}
        self.dirty = self.conflict = False
        self.viewing_version = 0
        self.canvas_error = self.save_message = ""
        self.palette = service.designer_catalog(ctx.db, tenant_id).palette()
        self._select_none()
        self._redraw(check=True)
        self.fit_signal += 1

    def _draft(self) -> dict[str, Any]:
        """The draft as plain data: Reflex hands state values out wrapped (to track changes), and what goes to
        the services and the undo history must be the values themselves."""
        return _plain(self._graph)

    def _components(self) -> ComponentResolver:
        """The compiler's resolver for this draft: imported components at their pinned versions."""
        return pinned(get_context().components_for(uuid.UUID(self.tenant_id)), self._draft())

    def _catalog(self) -> service.DesignerCatalog:
        return service.designer_catalog(
            get_context().db, uuid.UUID(self.tenant_id), self._draft().get("pins")
        )

    def _redraw(self, check: bool = True, graph: dict[str, Any] | None = None) -> None:
        """Draw `graph` (the draft by default); `check`: run the compiler on it again first."""
        shown = self._shown() if graph is None else graph
        if check:
            ctx = get_context()
            tenant_id = uuid.UUID(self.tenant_id)
            found = service.draft_problems(
                ctx.db, ctx.components_for(tenant_id), tenant_id, self._user(), shown
            )
            self.problems = _problem_rows(found)
            self.upgrades = [] if graph is not None else [
                {"component": u.component, "title": u.title, "pinned": u.pinned, "latest": u.latest,
                 "changes": list(u.changes) or ["no change in the fields this flow uses"]}
                for u in upgrades(ctx.db, tenant_id, shown)
            ]  # fmt: skip
        by_node: dict[str, list[str]] = {}
        for problem in self.problems:
            by_node.setdefault(problem["node"], []).append(problem["message"])
        runs = (
            {k: {"status": v["status"], "label": v["label"]} for k, v in self._runs.items()}
            if graph is None and not self.viewing_version
            else {}
        )
        self.nodes = canvas_nodes(shown, self._catalog().looks(), by_node, runs)
        self.edges = canvas_edges(shown)

    def _edit(self, graph: dict[str, Any], check: bool = True) -> None:
        """Make `graph` the draft, undoably, and redraw it; an imported component a step starts using is pinned
        at its newest version (see designer/edits.with_pins)."""
        used = {str(n.get("component")) for n in edits.nodes_of(graph)}
        self._replace(
            edits.with_pins(graph, newest_imported(get_context().db, uuid.UUID(self.tenant_id), used))
        )
        self._redraw(check)

    def _replace(self, graph: dict[str, Any]) -> None:
        """Make `graph` the draft, undoably, without redrawing (the browser may already show it)."""
        self._history.record(self._draft())
        self._graph = graph
        self.dirty = True
        self.save_message = ""

    def _may_edit(self) -> bool:
        self.canvas_error = ""
        if self._loaded_for != self._here():
            self.canvas_error = (
                "You switched tenant since this flow was opened: open it again from the Flows page."
            )
            return False
        if self.viewing_version:
            self.canvas_error = "This is a saved version, shown read-only: restore it to edit it."
            return False
        if not self.can_edit:
            self.canvas_error = (
                f"Your role here ({self.role or 'none'}) can look at this flow, not change it."
            )
            return False
        return True

    # -- canvas gestures ----------------------------------------------------------------------------------------
    @rx.event
    def nodes_moved(self, moves: list[dict[str, Any]]) -> None:
        if not self._may_edit():
            self._redraw(check=False)  # put them back where they were
            return
        try:
            checked = [
                {"id": str(m["id"]), "x": _coordinate(m["x"]), "y": _coordinate(m["y"])} for m in moves
            ]
        except (KeyError, TypeError, ValueError):
            self.canvas_error = "The canvas sent positions this page does not understand; reload the page."
            return
        self._replace(edits.move_nodes(self._draft(), checked))  # the browser already shows them there

    @rx.event
    def connect_nodes(self, link: dict[str, Any]) -> None:
        if not self._may_edit():
            return
        try:
            graph = edits.connect(
                self._draft(), str(link.get("source")), str(link.get("target")), self._catalog().is_trigger
            )
        except edits.EditRefused as exc:
            self.canvas_error = str(exc)
            self._redraw(check=False)
            return
        self._edit(graph)

    @rx.event
    def delete_items(self, items: dict[str, Any]) -> None:
        if not self._may_edit():
            self._redraw(check=False)
            return
        try:
            gone = [str(n) for n in items.get("nodes") or []]
            cut = [{"source": str(e["source"]), "target": str(e["target"])} for e in items.get("edges") or []]
        except (KeyError, TypeError):
            self.canvas_error = "The canvas sent a deletion this page does not understand; reload the page."
            return
        self._edit(edits.delete(self._draft(), gone, cut))
        # A later step may get a freed id: it must not show the deleted step's test data or choices.
        self._runs = {k: v for k, v in self._runs.items() if k not in gone}
        self._choices = {k: v for k, v in self._choices.items() if k.split("/", 1)[0] not in gone}
        self._refresh_selection()

    @rx.event
    def add_component(self, item: dict[str, Any]) -> None:
        if not self._may_edit():
            return
        component, function = str(item.get("component", "")), str(item.get("function", ""))
        if self._catalog().function(component, function) is None:
            self.canvas_error = f"{component!r} has no {function!r} in this tenant's catalog."
            return
        try:
            x, y = _coordinate(item.get("x") or 0), _coordinate(item.get("y") or 0)
        except (TypeError, ValueError):
            x, y = 0.0, 0.0
        graph, node_id = edits.add_node(self._draft(), component, function, x, y)
        self._edit(graph)
        self._select_node(node_id)

    @rx.event
    def copy_nodes(self, node_ids: list[str]):
        self._clipboard = edits.copy_nodes(self._shown(), [str(i) for i in node_ids])
        count = len(self._clipboard["nodes"])
        return rx.toast.info(f"Copied {count} step{'s' if count != 1 else ''}.")

    @rx.event
    def paste_nodes(self, where: dict[str, Any]) -> None:
        if not self._may_edit() or not self._clipboard:
            return
        try:
            x, y = _coordinate(where["x"]), _coordinate(where["y"])
        except (KeyError, TypeError, ValueError):
            x = y = None  # next to where they were copied from
        graph, _ = edits.paste(self._draft(), _plain(self._clipboard), x, y)
        self._edit(graph)

    @rx.event
    def undo(self) -> None:
        if not self._may_edit():
            return
        self._restore(self._history.undo(self._draft()))

    @rx.event
    def redo(self) -> None:
        if not self._may_edit():
            return
        self._restore(self._history.redo(self._draft()))

    def _restore(self, snapshot: dict[str, Any] | None) -> None:
        """A draft from the undo history (None: nothing to undo or redo) becomes the draft again."""
        if snapshot is not None:
            self._graph, self.dirty = _plain(snapshot), True
            self._refresh_selection()
            self._redraw()

    @rx.event
    def auto_layout(self) -> None:
        if not self._may_edit():
            return
        where = layout.layered_positions(edits.nodes_of(self._draft()), edits.edges_of(self._draft()))
        self._edit(edits.move_nodes(self._draft(), [{"id": k, **v} for k, v in where.items()]), check=False)
        self.fit_signal += 1

    # -- selection and the side panels --------------------------------------------------------------------------
    @rx.event
    def select_item(self, item: dict[str, Any]) -> None:
        if item.get("node"):
            self._select_node(str(item["node"]))
        elif item.get("source"):
            self._select_none()
            self.selected_source, self.selected_target = str(item["source"]), str(item.get("target") or "")
            self._refresh_selection()
        else:
            self._select_none()

    def _shown(self) -> dict[str, Any]:
        return _plain(self._viewed) if self.viewing_version else self._draft()

    def _select_none(self) -> None:
        self.selected_node = self.selected_source = self.selected_target = ""
        self.node_errors = {}

    def _refresh_selection(self) -> None:
        """After an edit or undo: the panel shows what is there now, or nothing when it is gone."""
        if self.selected_node:
            self._select_node(self.selected_node)
        elif self.selected_source:
            edge = edits.edge_between(self._shown(), self.selected_source, self.selected_target)
            if edge is None:
                self._select_none()
            else:
                self.edge_condition = str(edge.get("condition") or "")

    def _select_node(self, node_id: str) -> None:
        node = edits.node_by_id(self._shown(), node_id)
        self._select_none()
        if node is None:
            return
        catalog = self._catalog()
        function = catalog.function(str(node.get("component")), str(node.get("function")))
        descriptor = catalog.descriptor(str(node.get("component")))
        self.selected_node = node_id
        self.node_test = _test_view(self._runs.get(node_id))
        self.previews = {}
        self.node_component = str(node.get("component"))
        self.node_form_key = f"{node_id}/{uuid.uuid4().hex[:8]}"
        self.node_name = str(node.get("name") or "")
        self.node_errors = {}
        if function is None or descriptor is None:
            self.node_title = f"{node.get('component')} · {node.get('function')}"
            self.node_help = "This component is not in the catalog: import it, or delete this step."
            self.node_fields, self.takes_credential, self.credential_options = [], False, []
            self.choose_executor = self.takes_schedule = False
            self.node_settings = {}
            return
        self.node_title = descriptor.title + (f" · {function.title}" if len(descriptor.functions) > 1 else "")
        self.node_help = function.description or descriptor.description
        values = node.get("fields") or {}
        self.node_fields = [_with_value(field_view(f), values.get(f.name), bool(f.options_function),
                                        self._choices.get(f"{node_id}/{f.name}") or {})
                            for f in function.fields]  # fmt: skip
        spec = self._components().get(descriptor.name)
        kinds = spec.function(function.id).credential_kinds if spec and spec.function(function.id) else ()
        self.takes_credential = bool(kinds)
        self.node_credential = str(node.get("credential_id") or "")
        self.credential_options = []
        if kinds and self.can_edit:
            found = list_credentials(get_context().db, uuid.UUID(self.tenant_id), self._user(), kinds=tuple(kinds),
                                     component_name=descriptor.name)  # fmt: skip
            self.credential_options = [[str(c.id), f"{c.name} ({c.kind_label})"] for c in found]
        try:
            settings = NodeSettings.model_validate(node.get("settings") or {})
        except pydantic.ValidationError:  # an imported or hand-edited flow: show the defaults, say so
            settings = NodeSettings()
            self.canvas_error = f"The run settings of {node_id} are not valid; Apply saves the ones shown."
        self.node_settings = {
            "max_attempts": str(settings.retry.max_attempts),
            "base_delay_s": _number(settings.retry.base_delay_s),
            "max_delay_s": _number(settings.retry.max_delay_s),
            "timeout_s": _number(settings.timeout_s),
            "instances": str(settings.instances),
            "executor": settings.executor or "",
            "schedule": settings.schedule or "",
        }
        self.choose_executor = descriptor.runtime not in ("builtin",)
        self.takes_schedule = function.trigger_type == "polling"

    @rx.event(background=True)
    async def preview_expression(self, field: str, text: str):
        """Evaluate a JSONata field as typed against the step's input in the last test run (else the test-run
        sample), as n8n shows an expression's result beside it. Off the event loop and bounded in time: an
        expression may be heavy, and the page must stay responsive for everyone."""
        async with self:
            if not self.can_edit or self.read_only:
                return
            sample, where = self._sample()
            self.preview_sample = where
            node = self.selected_node
            if not text.strip():
                self.previews = {k: v for k, v in self.previews.items() if k != field}
                return
        try:
            shown = await asyncio.wait_for(
                asyncio.to_thread(_evaluate_preview, text, sample), PREVIEW_TIMEOUT_S
            )
        except TimeoutError:
            shown = f"takes longer than {PREVIEW_TIMEOUT_S:g} s on the sample; it is not previewed"
        async with self:
            if self.selected_node == node:
                self.previews = {**self.previews, field: shown[:PREVIEW_LIMIT]}

    def _sample(self) -> tuple[Any, str]:
        run = self._runs.get(self.selected_node)
        if run is not None and run.get("input") is not None:
            return _plain(run["input"]), "this step's input in the last test run"
        try:
            return json.loads(
                self.test_input or "null"
            ), "the test-run sample (no test run reached this step yet)"
        except json.JSONDecodeError:
            return None, "nothing (the test-run sample is not JSON)"

    @rx.event(background=True)
    async def load_choices(self, field: str):
        """A dynamic select's choices from the component, with the credential chosen in the panel and the
        step's applied fields (what the choices depend on). The component's code runs in a runner, off the
        event loop: it may take seconds."""
        async with self:
            if not self._may_edit() or not self.selected_node:
                return
            node = edits.node_by_id(self._draft(), self.selected_node)
            if node is None:
                return
            node_id, tenant_id, user = self.selected_node, uuid.UUID(self.tenant_id), self._user()
            components, credential = self._components(), self.node_credential or None
        key = f"node/{field}"
        try:
            found = await asyncio.to_thread(
                _list_choices, components, tenant_id, user, node, field, credential
            )
        except HubError as exc:
            async with self:
                if self.selected_node == node_id:
                    self.node_errors = {**self.node_errors, key: str(exc)}
            return
        async with self:
            self._choices = {**self._choices, f"{node_id}/{field}": found}
            if self.selected_node != node_id:
                return
            self.node_errors = {k: v for k, v in self.node_errors.items() if k != key}
            self.node_fields = [{**f, "options": _choice_list(found, f["value"])} if f["name"] == field else f
                                for f in self.node_fields]  # fmt: skip

    @rx.event
    def toggle_settings(self) -> None:
        self.show_settings = not self.show_settings

    @rx.event
    def set_node_credential(self, value: str) -> None:
        self.node_credential = value

    @rx.event
    def save_node(self, form: dict[str, Any]) -> None:
        """Apply the node panel to the draft: fields checked against the descriptor, settings against the
        schema; each error is shown beside its input and nothing changes until all are fixed."""
        if not self._may_edit() or not self.selected_node:
            return
        node = edits.node_by_id(self._draft(), self.selected_node)
        if node is None:
            self._select_none()
            return
        function = self._catalog().function(str(node["component"]), str(node["function"]))
        fields = function.fields if function else []
        form = _ticked(fields, form)
        errors = {f"node/{k}": v for k, v in field_errors(fields, form).items()}
        settings, setting_errors = _settings(form)
        errors.update({f"setting/{k}": v for k, v in setting_errors.items()})
        self.node_errors = errors
        if errors:
            return
        changes: dict[str, Any] = {
            "name": str(form.get("__name") or "").strip()[:200],
            "fields": cleaned_values(fields, form),
            "settings": settings,
        }
        if self.takes_credential:
            changes["credential_id"] = self.node_credential or None
        self._edit(edits.update_node(self._draft(), self.selected_node, **changes))
        self._select_node(self.selected_node)

    @rx.event
    def save_edge(self, form: dict[str, Any]) -> None:
        if not self._may_edit() or not self.selected_source:
            return
        try:
            graph = edits.set_condition(self._draft(), self.selected_source, self.selected_target,
                                        str(form.get("condition") or ""))  # fmt: skip
        except edits.EditRefused as exc:
            self.canvas_error = str(exc)
            return
        self.edge_condition = str(form.get("condition") or "").strip()
        self._edit(graph)

    @rx.event
    def upgrade_component(self, component: str):
        """The steps of `component` use its newest version from now on (undoable; saved with the draft)."""
        if not self._may_edit():
            return None
        offer = next((u for u in self.upgrades if u["component"] == component), None)
        if offer is None:
            return None
        try:
            self._edit(edits.set_pin(self._draft(), component, str(offer["latest"])))
        except edits.EditRefused as exc:
            self.canvas_error = str(exc)
            return None
        self._refresh_selection()
        return rx.toast.success(
            f"{offer['title']} upgraded to {offer['latest']}: check its steps, then save."
        )

    # -- saving, conflicts and versions -------------------------------------------------------------------------
    @rx.event
    def save(self):
        if not self._guard() or not self._may_edit():
            return None
        if not self.dirty and self.version_number and not self.problems:
            # Another identical version would only restart an active flow's runners.
            self.save_message = f"Nothing changed since version {self.version_number}."
            return None
        ctx = get_context()
        tenant_id, flow_id = self._ids()
        catalog = ctx.components_for(tenant_id)
        try:
            outcome = service.save_design(
                ctx.db, ctx.bus, catalog, tenant_id, flow_id, self._draft(),
                service.trigger_of(self._draft(), self._catalog()), expected_lock_version=self._lock_version,
                user_id=self._user(), routes=ctx.routes,
            )  # fmt: skip
        except ConflictError as exc:
            self.conflict = True
            self.save_message = str(exc)
            return None
        except HubError as exc:
            self.save_message = str(exc)
            return None
        self._lock_version = outcome.lock_version
        self.dirty = False
        self.problems = _problem_rows(outcome.problems)
        self._redraw(check=False)
        self._refresh()
        if outcome.version is None:
            self.save_message = (
                f"Draft saved. It has {len(outcome.problems)} problem(s), so no version was published; "
                "fix them and save again."
            )
            return None
        self.save_message = f"Saved as version {outcome.version}."
        if self.flow_status == FlowStatus.ACTIVE.value:  # its runners follow the new version
            enqueue_converge(ctx.redis)(tenant_id, flow_id, self._user())
        return rx.toast.success(self.save_message)

    @rx.event
    def reload_draft(self) -> None:
        """After a conflict: take the other person's draft, dropping this page's changes."""
        self._read_draft()
        self._refresh()

    @rx.event
    def save_as_copy(self):
        """After a conflict: keep this page's changes as a new flow, leaving the other person's alone."""
        if not self._guard():
            return None
        ctx = get_context()
        tenant_id, _ = self._ids()
        try:
            _, stored, _ = service.read_draft(ctx.db, tenant_id, uuid.UUID(self.current_flow_id))
            copy = flows.create_flow(ctx.db, tenant_id, f"{self.flow_name} (my copy)"[:200], self._draft(),
                                     service.trigger_of(self._draft(), self._catalog()), user_id=self._user(),
                                     known_graph=stored)  # fmt: skip
        except HubError as exc:
            self.save_message = str(exc)
            return None
        self.conflict = False
        return rx.redirect(f"/flows/{copy.id}")

    @rx.event
    def load_versions(self) -> None:
        ctx = get_context()
        tenant_id, flow_id = self._ids()
        self.versions = [
            {"number": str(v.number), "author": v.author, "saved_at": v.saved_at.strftime("%Y-%m-%d %H:%M"),
             "current": "yes" if v.current else ""}
            for v in service.list_versions(ctx.db, tenant_id, flow_id)
        ]  # fmt: skip

    @rx.event
    def view_version(self, number: str) -> None:
        ctx = get_context()
        tenant_id, flow_id = self._ids()
        try:
            self._viewed = service.version_graph(ctx.db, tenant_id, flow_id, int(number))
        except (HubError, ValueError) as exc:
            self.canvas_error = str(exc)
            return
        self.viewing_version = int(number)
        self._select_none()
        self.problems = []
        self._redraw(check=False, graph=_plain(self._viewed))
        self.fit_signal += 1

    @rx.event
    def back_to_draft(self) -> None:
        self.viewing_version = 0
        self._viewed = {}
        self._select_none()
        self._redraw()
        self.fit_signal += 1

    @rx.event
    def restore_version(self) -> None:
        """The viewed version becomes the draft (undoably); saving it publishes it as a new version."""
        if not self.viewing_version or not self.can_edit:
            return
        restored, number = _plain(self._viewed), self.viewing_version
        self.viewing_version = 0
        self._viewed = {}
        self._edit(restored)
        self.save_message = f"Version {number} restored into the draft: save to publish it as a new version."
        self.fit_signal += 1

    # -- test runs ------------------------------------------------------------------------------------------------
    @rx.event
    def open_test(self) -> None:
        """Offer the request the test URL captured last as the sample, when there is one and nothing was typed."""
        self.test_input_error = ""
        if self.test_input.strip() in ("", "{}") and self.captured:
            request = json.loads(self.captured).get("request")
            self.test_input = json.dumps(request, indent=2, ensure_ascii=False)

    @rx.event
    def listen_for_event(self):
        """Arm the test URL, then show the run its next request starts on the canvas, node by node."""
        if self.dirty:
            self.error = "Save first: the test URL runs the saved draft, and this page has unsaved changes."
            return None
        armed = self.listen()
        if armed is None:
            return None
        self._runs, self.test_run_id, self.test_status = {}, "", "waiting for a request"
        self._redraw(check=False)
        return [armed, DesignerState.follow_capture]

    @rx.event(background=True)
    async def follow_capture(self):
        async with self:
            tenant_id, flow_id = self._ids()
            before = self.captured
        deadline = time.monotonic() + webhooks.LISTEN_SECONDS + 2
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            found = await asyncio.to_thread(webhooks.captured_request, get_context().bus, tenant_id, flow_id)
            if (
                found is None
                or json.dumps(found, indent=2, ensure_ascii=False) == before
                or not found.get("run_id")
            ):
                continue
            async with self:
                if self.current_flow_id != str(flow_id) or self.tenant_id != str(tenant_id):
                    return  # the page moved on to another flow
                self.test_run_id = str(uuid.UUID(hex=str(found["run_id"])))
                self.test_status = "running"
                self.test_input = json.dumps(found.get("request"), indent=2, ensure_ascii=False)
            return DesignerState.watch_test_run
        async with self:
            if self.test_status == "waiting for a request":
                self.test_status = ""

    @rx.event
    def set_test_input(self, value: str) -> None:
        self.test_input = value

    @rx.event
    def run_test(self):
        """Run the canvas as it is now, saved or not, once, in test mode; the canvas follows the run."""
        self.test_input_error = ""
        if not self._guard():
            return None
        try:
            data = json.loads(self.test_input or "null")
        except json.JSONDecodeError as exc:
            self.test_input_error = f"The sample input is not JSON: {exc}."
            return None
        ctx = get_context()
        tenant_id, flow_id = self._ids()
        try:
            run_id = test_runs.start_test_run(ctx.db, ctx.bus, ctx.components_for(tenant_id), tenant_id, flow_id,
                                              self._draft(), data, user_id=self._user())  # fmt: skip
        except FlowInvalidError as exc:
            self.test_input_error = "The flow cannot run yet: " + "; ".join(str(p) for p in exc.problems)
            return None
        except HubError as exc:
            self.test_input_error = str(exc)
            return None
        self.test_run_id, self.test_status, self.test_error = str(run_id), "queued", ""
        self._runs = {}
        self._redraw(check=False)
        return [rx.toast.info("Test run started."), DesignerState.watch_test_run]

    @rx.event(background=True)
    async def watch_test_run(self):
        """Show each step's outcome on its node as the recorder stores it, until the run ends (checked often at
        first, then every few seconds; a slow step may take minutes)."""
        async with self:
            run_id, tenant_id = self.test_run_id, self.tenant_id
        if not run_id:
            return
        deadline, pause, seen = time.monotonic() + TEST_WATCH_S, 0.4, None
        while time.monotonic() < deadline:
            await asyncio.sleep(pause)
            pause = min(pause * 1.25, 3.0)
            view = await asyncio.to_thread(test_runs.test_run_view, get_context().db, uuid.UUID(tenant_id),
                                           uuid.UUID(run_id))  # fmt: skip
            summary = (view.status, tuple(sorted((k, o.label, o.executions) for k, o in view.steps.items())))
            if summary != seen:  # redraw (a 200-step flow's nodes) only when something happened
                seen = summary
                async with self:
                    if self.test_run_id != run_id:
                        return  # another run (or another flow) took over
                    self._runs = {node: _outcome_dict(o) for node, o in view.steps.items()}
                    self.test_status, self.test_error = view.status.replace("_", " "), view.error
                    if self.selected_node:
                        self.node_test = _test_view(self._runs.get(self.selected_node))
                    self._redraw(check=False)
            if view.finished:
                return
        async with self:
            if self.test_run_id == run_id:
                self.test_status = f"no result after {TEST_WATCH_S // 60} minutes: see the Runs page for it"

    # -- activation: only what was saved and has no problems -------------------------------------------------------
    @rx.event
    def activate_design(self):
        if self.dirty:
            self.error = "Save your changes first: activating runs the saved version."
            return None
        if self.problems:
            self.error = f"Not activated: the flow has {len(self.problems)} problem(s); fix them (see the list) and save."
            return None
        return self.activate()


def _with_value(
    view: dict[str, Any], value: Any, dynamic: bool = False, loaded: dict[str, str] | None = None
) -> dict[str, Any]:
    if dynamic:  # choices come from the component on demand; until then the saved choice is the only one
        chosen = "" if value is None else str(value)
        return {**view, "kind": "dynamic", "value": chosen, "options": _choice_list(loaded or {}, chosen)}
    if view["kind"] == "multiselect":  # ticked choices (see _ticked)
        chosen = (
            [str(v) for v in value]
            if isinstance(value, list)
            else ([] if value in (None, "") else [str(value)])
        )
        return {**view, "value": "", "chosen": chosen}
    if isinstance(value, (dict, list)):
        shown: Any = json.dumps(value, indent=2, ensure_ascii=False)
    elif isinstance(value, bool):
        shown = value
    else:
        shown = "" if value is None else str(value)
    return {**view, "value": shown}


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _settings(form: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The run settings from the panel, checked by the flow schema; errors keyed by input."""
    raw = {k: str(form.get(f"__{k}") or "").strip() for k in SETTING_INPUTS}
    document: dict[str, Any] = {
        "retry": {key: raw[key] for key in ("max_attempts", "base_delay_s", "max_delay_s") if raw[key]},
        "timeout_s": raw["timeout_s"] or None,
        "instances": raw["instances"] or None,
        "executor": raw["executor"] or None,
        "schedule": raw["schedule"] or None,
    }
    document = {k: v for k, v in document.items() if v is not None}
    try:
        settings = NodeSettings.model_validate(document)
    except pydantic.ValidationError as exc:
        errors = {}
        for error in exc.errors():
            location = [str(p) for p in error["loc"]]
            key = location[-1] if location else "settings"
            errors[key] = f"{error['msg']}."
        return {}, errors
    return settings.model_dump(exclude_defaults=True), {}


def _outcome_dict(outcome: test_runs.StepOutcome) -> dict[str, Any]:
    return {"status": outcome.status, "label": outcome.label, "input": outcome.input, "output": outcome.output,
            "error": outcome.error, "truncated": outcome.truncated}  # fmt: skip


def _test_view(outcome: dict[str, Any] | None) -> dict[str, str]:
    if outcome is None:
        return {}
    cut = " (truncated)" if outcome.get("truncated") else ""
    return {
        "label": str(outcome["label"]),
        "input": json.dumps(outcome.get("input"), indent=2, ensure_ascii=False) + cut,
        "output": json.dumps(outcome.get("output"), indent=2, ensure_ascii=False) + cut,
        "error": str(outcome.get("error") or ""),
    }


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _choice_list(found: dict[str, str], chosen: str) -> list[list[str]]:
    """The listed choices, plus the saved one when the list no longer has it (it must not vanish on Apply)."""
    options = [[value, label] for value, label in found.items()]
    return options + ([[chosen, chosen]] if chosen and chosen not in found else [])


def _coordinate(value: Any) -> float:
    """A position from the browser: a finite number (NaN or infinity would be stored and break the save)."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _evaluate_preview(text: str, sample: Any) -> str:
    try:
        return json.dumps(
            evaluate(compile_expression(text), sample), indent=2, ensure_ascii=False, default=str
        )
    except ExpressionError as exc:
        return f"does not parse: {exc}"
    except Exception as exc:  # jsonata's evaluation errors: what the step would fail with
        return f"fails: {exc}"


def _list_choices(
    components: ComponentResolver,
    tenant_id: uuid.UUID,
    user: uuid.UUID | None,
    node: dict[str, Any],
    field: str,
    credential: str | None,
) -> dict[str, str]:
    ctx = get_context()
    runners = verification_runners(ctx.settings)  # a runner for this question, stopped after it
    try:
        return field_options(ctx.db, ctx.vault, components, runners, tenant_id, user, str(node["component"]),
                             str(node["function"]), field, dict(node.get("fields") or {}), credential)  # fmt: skip
    finally:
        for runner in runners.values():
            runner.close()


def _ticked(fields: list[Any], form: dict[str, Any]) -> dict[str, Any]:
    """A multiple choice comes back as one checkbox per choice ("name::value": "on"): make it the list of values."""
    merged = {k: v for k, v in form.items() if "::" not in k}
    for field in fields:
        if field.kind == "multiselect" and not field.options_function:
            prefix = f"{field.name}::"
            merged[field.name] = [
                k[len(prefix) :] for k, v in form.items() if k.startswith(prefix) and v in ("on", True)
            ]
    return merged


def _problem_rows(found: list[Any]) -> list[dict[str, str]]:
    return [{"node": p.node_id or "", "message": p.message} for p in found]
