"""Test runs from the designer: the unsaved canvas runs once in test mode, and each step's data is read back."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.errors import FlowInvalidError, PermissionDeniedError
from app.services import accounts, catalog, flows, test_runs
from app.services.catalog import TenantCatalog
from app.services.component_code import folder_resolver
from app.storage.models import FlowVersion, Run
from app.storage.scoping import tenant_session
from runtime.executors.process import ProcessExecutor
from runtime.executors.sandbox import SandboxPolicy
from runtime.steps.executor import InlineExecutor
from runtime.worker import Worker, WorkerConfig
from tests.runtime.conftest import START, node

PROBE = Path(__file__).resolve().parents[2] / "fixtures" / "components" / "probe"


def _graph(expression: str) -> dict:
    return {
        "nodes": [START, node("shape", "jsonata", "transform", fields={"expression": expression}),
                  node("log", "log", "log")],
        "edges": [{"source": "start", "target": "shape"}, {"source": "shape", "target": "log"}],
    }  # fmt: skip


def _run(hub, flow_id, graph, data):
    run_id = test_runs.start_test_run(hub.db, hub.bus, hub.components, hub.tenant_id, flow_id, graph, data,
                                      user_id=None)  # fmt: skip
    hub.drive(lambda: test_runs.test_run_view(hub.db, hub.tenant_id, run_id).finished)
    return run_id, test_runs.test_run_view(hub.db, hub.tenant_id, run_id)


def test_the_canvas_runs_unsaved_and_each_step_shows_its_data(hub) -> None:
    flow = flows.create_flow(hub.db, hub.tenant_id, "draft only")  # empty draft: the canvas is what runs
    run_id, view = _run(hub, flow.id, _graph("{'doubled': n * 2}"), {"n": 21})
    assert view.status == "succeeded" and view.error == ""
    assert set(view.steps) == {"start", "shape", "log"}
    shape = view.steps["shape"]
    assert (shape.status, shape.executions) == ("succeeded", 1)
    assert "21" in str(shape.input) and "42" in str(shape.output)
    assert shape.label.startswith("✓ ran once")
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        assert session.scalar(sa.select(Run.test_mode).where(Run.id == run_id)) is True
        assert session.scalar(sa.select(sa.func.count(FlowVersion.id))) == 0  # no version was made


def test_a_failing_step_shows_its_error_on_its_node(hub) -> None:
    flow = flows.create_flow(hub.db, hub.tenant_id, "breaks")
    graph = _graph("$error('the amount is missing')")
    graph["nodes"][1] = {**graph["nodes"][1], "settings": {"retry": {"max_attempts": 1}}}
    _, view = _run(hub, flow.id, graph, {})
    assert view.status == "failed"
    shape = view.steps["shape"]
    assert shape.status == "failed" and "the amount is missing" in shape.error
    assert shape.label.startswith("✗ ") and "the amount is missing" in shape.label
    assert "log" not in view.steps  # nothing ran after it


def test_a_canvas_that_cannot_run_names_its_problems(hub) -> None:
    flow = flows.create_flow(hub.db, hub.tenant_id, "half done")
    graph = {
        "nodes": [START, node("shape", "jsonata", "transform")],
        "edges": [{"source": "start", "target": "shape"}],
    }
    with pytest.raises(FlowInvalidError) as caught:
        test_runs.start_test_run(
            hub.db, hub.bus, hub.components, hub.tenant_id, flow.id, graph, {}, user_id=None
        )
    assert [(p.node_id, p.code) for p in caught.value.problems] == [("shape", "missing_field")]


def test_a_run_not_recorded_yet_is_queued(hub) -> None:
    view = test_runs.test_run_view(hub.db, hub.tenant_id, uuid.uuid4())
    assert (view.status, view.steps, view.finished) == ("queued", {}, False)


def test_a_test_run_of_an_imported_component_runs_its_pinned_version(hub, tmp_path) -> None:
    components_dir = tmp_path / "components"
    first = catalog.import_folder(hub.db, PROBE, tenant_id=hub.tenant_id, components_dir=components_dir)
    flow = flows.create_flow(hub.db, hub.tenant_id, "imported")
    graph = {"nodes": [START, node("echo", "probe", "echo")], "edges": [{"source": "start", "target": "echo"}],
             "pins": {"probe": first.version}}  # fmt: skip
    executor = ProcessExecutor(folder_resolver(components_dir), SandboxPolicy())
    hub.workers.append(Worker(hub.bus, hub.components, WorkerConfig(name="w", block_ms=10, housekeeping_interval_s=0.02),
                              executors={"inline": InlineExecutor(), "process": executor}))  # fmt: skip
    try:
        run_id = test_runs.start_test_run(hub.db, hub.bus, TenantCatalog(hub.db, hub.tenant_id), hub.tenant_id,
                                          flow.id, graph, {"n": 1}, user_id=None)  # fmt: skip
        hub.drive(lambda: test_runs.test_run_view(hub.db, hub.tenant_id, run_id).finished)
        view = test_runs.test_run_view(hub.db, hub.tenant_id, run_id)
        assert view.status == "succeeded", view.steps["echo"].error if "echo" in view.steps else view.error
        assert view.steps["echo"].status == "succeeded"
    finally:
        executor.close()


def test_a_test_run_never_starts_an_image_this_tenant_did_not_add(hub) -> None:
    image = {"title": "Their CRM", "x-hub": {"image": "registry.example.com/other/crm@sha256:" + "a" * 64,
                                              "image_owner": hub.tenant_id.hex},
             "actions": {"sync": {"title": "Sync", "main": "./sync.js"}}}  # fmt: skip
    catalog.import_descriptor(hub.db, image, name="their-crm", tenant_id=hub.tenant_id)
    flow = flows.create_flow(hub.db, hub.tenant_id, "theirs")
    graph = {
        "nodes": [START, node("step", "their-crm", "sync")],
        "edges": [{"source": "start", "target": "step"}],
    }
    with pytest.raises(FlowInvalidError, match="which this tenant has not added") as caught:
        test_runs.start_test_run(hub.db, hub.bus, TenantCatalog(hub.db, hub.tenant_id), hub.tenant_id, flow.id,
                                 graph, {}, user_id=None)  # fmt: skip
    assert [(p.node_id, p.code) for p in caught.value.problems] == [("step", "image_not_added")]


def test_a_viewer_cannot_start_a_test_run(hub) -> None:
    viewer = accounts.create_user(hub.db, f"v-{uuid.uuid4().hex[:6]}@example.com", "a long password!!").id
    accounts.add_member(hub.db, hub.tenant_id, viewer, "viewer")
    flow = flows.create_flow(hub.db, hub.tenant_id, "watched")
    with pytest.raises(PermissionDeniedError):
        test_runs.start_test_run(hub.db, hub.bus, hub.components, hub.tenant_id, flow.id, _graph("{'a': 1}"), {},
                                 user_id=viewer)  # fmt: skip
