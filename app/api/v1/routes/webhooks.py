"""/flows/{id}/webhooks: a flow's production and test URLs (made, rotated, revoked) and how they answer."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from app.api.v1.deps import EditorReader, Writer
from app.api.v1.schemas import WebhookKindParam, WebhookSettingsIn, WebhooksOut, WebhookUrlOut
from app.services import webhooks

router = APIRouter(prefix="/flows/{flow_id}/webhooks", tags=["webhooks"])


def _state(caller: EditorReader, flow_id: uuid.UUID) -> WebhooksOut:
    hub = caller.hub
    found = webhooks.webhooks_of(hub.db, hub.bus, caller.tenant_id, flow_id, hub.routes)
    return WebhooksOut(
        production=WebhookUrlOut.model_validate(found.production) if found.production else None,
        test=WebhookUrlOut.model_validate(found.test) if found.test else None,
        settings=found.settings.model_dump(mode="json"),
        active=found.active,
        problem=found.problem,
    )


@router.get("", response_model=WebhooksOut, summary="The flow's webhook URLs and settings")
def get_webhooks(flow_id: uuid.UUID, editor: EditorReader) -> WebhooksOut:
    return _state(editor, flow_id)


@router.post("/{kind}", response_model=WebhookUrlOut, status_code=201, summary="Make the URL (idempotent)")
def create_url(flow_id: uuid.UUID, kind: WebhookKindParam, editor: Writer) -> WebhookUrlOut:
    hub = editor.hub
    view = webhooks.create_url(hub.db, hub.bus, editor.components, editor.tenant_id, flow_id, kind, hub.routes,
                               user_id=editor.user_id)  # fmt: skip
    return WebhookUrlOut.model_validate(view)


@router.post("/{kind}/rotate", response_model=WebhookUrlOut, summary="Replace the URL; the old one stops")
def rotate_url(flow_id: uuid.UUID, kind: WebhookKindParam, editor: Writer) -> WebhookUrlOut:
    hub = editor.hub
    view = webhooks.rotate_url(hub.db, hub.bus, editor.components, editor.tenant_id, flow_id, kind, hub.routes,
                               user_id=editor.user_id)  # fmt: skip
    return WebhookUrlOut.model_validate(view)


@router.delete("/{kind}", status_code=204, summary="Revoke the URL")
def revoke_url(flow_id: uuid.UUID, kind: WebhookKindParam, editor: Writer) -> None:
    hub = editor.hub
    webhooks.revoke_url(hub.db, hub.bus, editor.tenant_id, flow_id, kind, user_id=editor.user_id)


@router.put("/settings", response_model=WebhooksOut, summary="How the URLs answer and whom they accept")
def update_settings(flow_id: uuid.UUID, body: WebhookSettingsIn, editor: Writer) -> WebhooksOut:
    hub = editor.hub
    webhooks.update_settings(hub.db, hub.bus, editor.components, hub.vault, editor.tenant_id, flow_id,
                             body.settings, hub.routes, secret=body.secret, user_id=editor.user_id)  # fmt: skip
    return _state(editor, flow_id)
