"""/templates: the tenant's gallery and the hub's shipped templates; flows made from them, and documents exported
and imported (never holding a credential)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query

from app.api.v1.deps import Reader, Writer
from app.api.v1.schemas import (
    DocumentIn,
    FlowImport,
    Instantiate,
    InstantiatedOut,
    TemplateDetail,
    TemplateFromFlow,
    TemplateOut,
)
from app.services import templates

router = APIRouter(tags=["templates"])


def _out(view: templates.TemplateView) -> TemplateOut:
    return TemplateOut.model_validate(view)


@router.get(
    "/templates", response_model=list[TemplateOut], summary="The gallery: this tenant's and the hub's"
)
def list_templates(reader: Reader, search: str = Query("", max_length=200)) -> list[TemplateOut]:
    return [_out(t) for t in templates.list_templates(reader.hub.db, reader.tenant_id, search)]


@router.get("/templates/{template_id}", response_model=TemplateDetail, summary="A template with its graph")
def get_template(template_id: uuid.UUID, reader: Reader) -> TemplateDetail:
    view, graph = templates.get_template(reader.hub.db, reader.tenant_id, template_id)
    return TemplateDetail.model_validate({**_out(view).model_dump(), "graph": graph})


@router.get("/templates/{template_id}/export", summary="A template as a document to share")
def export_template(template_id: uuid.UUID, reader: Reader) -> dict:
    return templates.export_template(reader.hub.db, reader.tenant_id, reader.user_id, template_id)


@router.post("/templates", response_model=TemplateOut, status_code=201, summary="Save a flow as a template")
def save_flow(body: TemplateFromFlow, editor: Writer) -> TemplateOut:
    view = templates.save_flow_as_template(editor.hub.db, editor.hub.vault, editor.tenant_id, editor.user_id,
                                           body.flow_id, name=body.name, description=body.description)  # fmt: skip
    return _out(view)


@router.post("/templates/import", response_model=TemplateOut, status_code=201,
             summary="Import a flow or template document into the gallery")  # fmt: skip
def import_template(body: DocumentIn, editor: Writer) -> TemplateOut:
    return _out(templates.import_template(editor.hub.db, editor.tenant_id, editor.user_id, body.document))


@router.delete("/templates/{template_id}", status_code=204, summary="Delete one of this tenant's templates")
def delete_template(template_id: uuid.UUID, editor: Writer) -> None:
    templates.delete_template(editor.hub.db, editor.tenant_id, editor.user_id, template_id)


@router.post("/templates/{template_id}/instantiate", response_model=InstantiatedOut, status_code=201,
             summary="Make a flow from a template, with a credential for each step that needs one")  # fmt: skip
def instantiate(template_id: uuid.UUID, body: Instantiate, editor: Writer) -> InstantiatedOut:
    made = templates.instantiate(editor.hub.db, editor.tenant_id, editor.user_id, template_id, name=body.name,
                                 credentials=body.credentials, leave_unmapped=body.leave_unmapped)  # fmt: skip
    return InstantiatedOut.model_validate(made)


@router.post("/flows/import", response_model=InstantiatedOut, status_code=201,
             summary="Make a flow from an exported document, with a credential for each step that needs one")  # fmt: skip
def import_flow(body: FlowImport, editor: Writer) -> InstantiatedOut:
    document = templates.parse_document(body.document)
    made = templates.instantiate_document(editor.hub.db, editor.tenant_id, editor.user_id, document, name=body.name,
                                          credentials=body.credentials, leave_unmapped=body.leave_unmapped)  # fmt: skip
    return InstantiatedOut.model_validate(made)
