"""/credentials: metadata and changes of the tenant's credentials. No answer ever holds a secret value: they are
write-only, and a PATCH changes only the fields it names."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from app.api.v1.deps import EditorReader, Writer
from app.api.v1.schemas import CredentialCreate, CredentialOut, CredentialPatch
from app.services import credentials

router = APIRouter(prefix="/credentials", tags=["credentials"])


@router.get(
    "", response_model=list[CredentialOut], summary="List credentials (shared and your personal ones)"
)
def list_credentials(reader: EditorReader) -> list[CredentialOut]:
    found = credentials.list_credentials(reader.hub.db, reader.tenant_id, reader.user_id)
    return [CredentialOut.model_validate(c) for c in found]


@router.get("/{credential_id}", response_model=CredentialOut, summary="One credential, secrets masked")
def get_credential(credential_id: uuid.UUID, reader: EditorReader) -> CredentialOut:
    hub = reader.hub
    view = credentials.get_credential(hub.db, hub.vault, reader.components, reader.tenant_id, reader.user_id,
                                      credential_id)  # fmt: skip
    return CredentialOut.model_validate(view)


@router.post("", response_model=CredentialOut, status_code=201, summary="Create a credential")
def create_credential(body: CredentialCreate, editor: Writer) -> CredentialOut:
    hub = editor.hub
    view = credentials.create_credential(hub.db, hub.vault, editor.components, editor.tenant_id, editor.user_id,
                                         name=body.name, kind=body.kind, values=body.values,
                                         component_name=body.component_name, personal=body.personal)  # fmt: skip
    return CredentialOut.model_validate(view)


@router.patch("/{credential_id}", response_model=CredentialOut, summary="Rename or change some values")
def patch_credential(credential_id: uuid.UUID, body: CredentialPatch, editor: Writer) -> CredentialOut:
    hub = editor.hub
    view = credentials.update_credential(hub.db, hub.vault, editor.components, editor.tenant_id, editor.user_id,
                                         credential_id, name=body.name, values=body.values,
                                         changes=hub.bus)  # fmt: skip
    return CredentialOut.model_validate(view)


@router.delete("/{credential_id}", status_code=204, summary="Delete a credential no active flow uses")
def delete_credential(credential_id: uuid.UUID, editor: Writer) -> None:
    credentials.delete_credential(editor.hub.db, editor.tenant_id, editor.user_id, credential_id,
                                  changes=editor.hub.bus)  # fmt: skip
