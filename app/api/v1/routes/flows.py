"""/flows: the flows of the caller's tenant, their drafts, versions, activation and manual runs."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from app.api.v1.deps import Reader, Runner, Writer
from app.api.v1.schemas import (
    DraftOut,
    DraftSave,
    FlowCreate,
    FlowOut,
    FlowPatch,
    FlowSummaryOut,
    PublishRequest,
    RunStart,
    RunStarted,
    VersionDetail,
    VersionOut,
)
from app.services import designer, flow_list, flows, runs
from app.services.flow_export import export_flow
from runtime.flows.schema import FlowGraph

router = APIRouter(prefix="/flows", tags=["flows"])


def _draft(graph: FlowGraph) -> dict:
    # The trigger is not part of a draft: it follows from the trigger node (designer.trigger_of).
    return graph.model_dump(mode="json", exclude={"trigger"}, exclude_none=True)


def _detail(caller: Reader, flow_id: uuid.UUID) -> FlowOut:
    return FlowOut.model_validate(flow_list.read_flow(caller.hub.db, caller.tenant_id, flow_id))


@router.get("", response_model=list[FlowSummaryOut], summary="List flows")
def list_flows(
    reader: Reader,
    search: str = Query("", max_length=200),
    sort: Literal["updated", "created", "name", "status", "last_run"] = "updated",
) -> list[FlowSummaryOut]:
    found = flow_list.list_flows(reader.hub.db, reader.tenant_id, search, sort)
    return [FlowSummaryOut.model_validate(f) for f in found]


@router.post("", response_model=FlowOut, status_code=201, summary="Create a flow")
def create_flow(body: FlowCreate, editor: Writer) -> FlowOut:
    graph = _draft(body.graph) if body.graph else None
    trigger = None
    if graph is not None:
        catalog = designer.designer_catalog(editor.hub.db, editor.tenant_id, graph.get("pins"))
        trigger = designer.trigger_of(graph, catalog)
    flow = flows.create_flow(
        editor.hub.db, editor.tenant_id, body.name, graph, trigger, user_id=editor.user_id
    )
    return _detail(editor, flow.id)


@router.get("/{flow_id}", response_model=FlowOut, summary="Read a flow and its draft")
def get_flow(flow_id: uuid.UUID, reader: Reader) -> FlowOut:
    return _detail(reader, flow_id)


@router.patch("/{flow_id}", response_model=FlowOut, summary="Rename a flow")
def patch_flow(flow_id: uuid.UUID, body: FlowPatch, editor: Writer) -> FlowOut:
    if body.name is not None:
        flows.rename_flow(editor.hub.db, editor.tenant_id, flow_id, body.name, user_id=editor.user_id)
    return _detail(editor, flow_id)


@router.delete("/{flow_id}", status_code=204, summary="Delete an inactive flow with its versions and runs")
def delete_flow(flow_id: uuid.UUID, editor: Writer) -> None:
    hub = editor.hub
    flows.delete_flow(hub.db, hub.bus, editor.tenant_id, flow_id, user_id=editor.user_id, enqueue=hub.enqueue)


@router.post("/{flow_id}/duplicate", response_model=FlowOut, status_code=201, summary="Copy a flow's draft")
def duplicate_flow(flow_id: uuid.UUID, editor: Writer) -> FlowOut:
    copy = flows.duplicate_flow(editor.hub.db, editor.tenant_id, flow_id, user_id=editor.user_id)
    return _detail(editor, copy.id)


@router.put("/{flow_id}/draft", response_model=DraftOut, summary="Replace the draft")
def save_draft(flow_id: uuid.UUID, body: DraftSave, editor: Writer) -> DraftOut:
    """Stores the draft (a stale `lock_version` is a 409, never an overwrite) and says what would stop it from
    being published. Publishing is a separate call (POST /flows/{id}/versions)."""
    hub, graph = editor.hub, _draft(body.graph)
    flow_list.read_flow(hub.db, editor.tenant_id, flow_id)  # 404 before anything is compiled
    catalog = designer.designer_catalog(hub.db, editor.tenant_id, graph.get("pins"))
    saved = flows.save_draft(hub.db, editor.tenant_id, flow_id, graph, expected_lock_version=body.lock_version,
                             trigger=designer.trigger_of(graph, catalog), user_id=editor.user_id)  # fmt: skip
    problems = designer.draft_problems(
        hub.db, hub.components_for(editor.tenant_id), editor.tenant_id, editor.user_id, graph
    )
    return DraftOut(lock_version=saved.lock_version, problems=problems)


@router.get("/{flow_id}/versions", response_model=list[VersionOut], summary="List published versions")
def list_versions(flow_id: uuid.UUID, reader: Reader) -> list[VersionOut]:
    found = designer.list_versions(reader.hub.db, reader.tenant_id, flow_id)
    return [VersionOut.model_validate(v) for v in found]


@router.post(
    "/{flow_id}/versions", response_model=VersionDetail, status_code=201, summary="Publish the draft"
)
def publish(flow_id: uuid.UUID, body: PublishRequest, editor: Writer) -> VersionDetail:
    hub = editor.hub
    version = flows.publish_flow(hub.db, hub.bus, editor.components, editor.tenant_id, flow_id,
                                 user_id=editor.user_id, note=body.note, routes=hub.routes,
                                 expected_lock_version=body.lock_version)  # fmt: skip
    return VersionDetail(number=version.number, graph=version.graph)


@router.get("/{flow_id}/versions/{number}", response_model=VersionDetail, summary="Read a published version")
def get_version(
    flow_id: uuid.UUID, number: Annotated[int, Path(ge=1, le=2**31 - 1)], reader: Reader
) -> VersionDetail:
    flow_list.read_flow(reader.hub.db, reader.tenant_id, flow_id)
    graph = designer.version_graph(reader.hub.db, reader.tenant_id, flow_id, number)
    return VersionDetail(number=number, graph=graph)


@router.post("/{flow_id}/activate", response_model=FlowOut, status_code=202, summary="Activate a flow")
def activate(flow_id: uuid.UUID, editor: Writer) -> FlowOut:
    """The flow becomes `starting`; a worker starts its runners and opens its URL, then says `active` (or
    `error` with the reason in `status_reason`). Poll GET /flows/{id}."""
    flows.request_activation(editor.hub.db, editor.tenant_id, flow_id, enqueue=editor.hub.enqueue,
                             user_id=editor.user_id)  # fmt: skip
    return _detail(editor, flow_id)


@router.post("/{flow_id}/deactivate", response_model=FlowOut, status_code=202, summary="Deactivate a flow")
def deactivate(flow_id: uuid.UUID, editor: Writer) -> FlowOut:
    hub = editor.hub
    flows.request_deactivation(hub.db, hub.bus, editor.components, editor.tenant_id, flow_id,
                               enqueue=hub.enqueue, routes=hub.routes, user_id=editor.user_id)  # fmt: skip
    return _detail(editor, flow_id)


@router.post("/{flow_id}/runs", response_model=RunStarted, status_code=202, summary="Start a run")
def start_run(flow_id: uuid.UUID, body: RunStart, runner: Runner) -> RunStarted:
    """Runs the published version with `data` as the first message; follow it at GET /runs/{run_id}."""
    hub = runner.hub
    run_id = runs.start_manual_run(hub.db, hub.bus, runner.components, runner.tenant_id, flow_id, body.data)
    return RunStarted(run_id=run_id)


@router.get("/{flow_id}/export", summary="Export a flow as a shareable document (no credentials)")
def export(flow_id: uuid.UUID, reader: Reader, published: bool = False) -> dict:
    hub = reader.hub
    return export_flow(hub.db, hub.vault, reader.tenant_id, reader.user_id, flow_id, published=published)
