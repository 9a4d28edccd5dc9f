"""/components: the catalog the tenant's flows may use (built-ins, global imports, its own), and importing one."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query

from app.api.v1.deps import Reader, Writer
from app.api.v1.schemas import ComponentDetail, ComponentImport, ComponentOut, ImportOut
from app.services import catalog

router = APIRouter(prefix="/components", tags=["components"])


@router.get("", response_model=list[ComponentOut], summary="List the catalog")
def list_components(reader: Reader, search: str = Query("", max_length=200)) -> list[ComponentOut]:
    return [
        ComponentOut.model_validate(c)
        for c in catalog.list_components(reader.hub.db, reader.tenant_id, search)
    ]


@router.get("/{component_id}", response_model=ComponentDetail, summary="A component with its descriptor")
def get_component(component_id: uuid.UUID, reader: Reader) -> ComponentDetail:
    row, warnings = catalog.component_detail(reader.hub.db, reader.tenant_id, component_id)
    descriptor = {k: v for k, v in (row.descriptor or {}).items() if not k.startswith("x-hub-")}
    return ComponentDetail(id=row.id, name=row.name, version=row.version, descriptor=descriptor,
                           scope="global" if row.tenant_id is None else "tenant", warnings=warnings)  # fmt: skip


@router.post(
    "", response_model=ImportOut, status_code=201, summary="Import a component.json into this tenant"
)
def import_component(body: ComponentImport, editor: Writer) -> ImportOut:
    """The descriptor of a component whose code or image the hub can already reach (an image by reference);
    a component with local code is imported with `hub components import` or on the Catalog page."""
    result = catalog.import_descriptor(editor.hub.db, body.descriptor, name=body.name, tenant_id=editor.tenant_id,
                                       user_id=editor.user_id)  # fmt: skip
    return ImportOut.model_validate(result)


@router.delete("/{component_id}", status_code=204, summary="Delete one of this tenant's components")
def delete_component(component_id: uuid.UUID, editor: Writer) -> None:
    catalog.delete_component(editor.hub.db, editor.tenant_id, component_id, user_id=editor.user_id)
