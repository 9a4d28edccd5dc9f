"""Exporting a flow as a document to share or import elsewhere: a template never carries credentials.

Each node's credential id becomes what the step needs (its kind, and the component for a component's own
fields), so whoever imports the flow picks their own credential. And any value of the tenant's credentials that
someone pasted into the flow itself (a token in a URL, a password in a field) is masked, like in run records."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import sqlalchemy as sa

from app.errors import NotFoundError
from app.services.members import role_of
from app.services.plans import get_flow
from app.services.webhooks import WebhookSettings
from app.storage.db import Database
from app.storage.models import Credential, FlowVersion, Webhook
from app.storage.scoping import tenant_session
from app.storage.types import utcnow
from app.vault.store import MasterKeyMissing, Vault, VaultError
from runtime.steps.credentials import mask, secret_strings

FORMAT = "integration-hub.flow/1"


def export_flow(
    db: Database,
    vault: Vault,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID | None,
    flow_id: uuid.UUID,
    *,
    published: bool = False,
) -> dict[str, Any]:
    """The flow's draft (or, with `published`, its published version) as a shareable document."""
    with tenant_session(db.sessions, tenant_id) as session:
        if role_of(session, user_id) is None:
            raise NotFoundError("This flow does not exist (or belongs to another tenant).")
        flow = get_flow(session, flow_id)
        source: Any = flow
        if published:
            if flow.current_version_id is None:
                raise NotFoundError(f"{flow.name!r} has no published version yet.")
            source = session.get(FlowVersion, flow.current_version_id)
        credentials = {c.id: c for c in session.scalars(sa.select(Credential))}
        secrets: set[str] = set()
        for credential in credentials.values():
            try:
                secrets.update(secret_strings(vault.reveal(session, credential)))
            except MasterKeyMissing:
                raise  # a rotation under way: exporting now could leave a pasted secret unmasked
            except VaultError:
                continue  # a credential that does not open here cannot have been pasted from here either
        hook = session.scalar(
            sa.select(Webhook).where(Webhook.flow_id == flow.id, Webhook.revoked_at.is_(None)).limit(1)
        )
        settings = WebhookSettings.model_validate(hook.settings) if hook and hook.settings else None
        document = {
            "format": FORMAT,
            "name": flow.name,
            "description": flow.description,
            "exported_at": utcnow().isoformat(),
            "graph": _without_credentials(source.graph or {}, credentials),
            "trigger": source.trigger or {},
        }
        if settings is not None:
            # How the webhook answers and which protection it wants; never its URL or its secret.
            document["webhook"] = settings.model_dump(exclude={"credential_id"})
    ordered = tuple(sorted(secrets, key=len, reverse=True))
    return mask(document, ordered)


def _without_credentials(graph: dict[str, Any], credentials: dict[uuid.UUID, Credential]) -> dict[str, Any]:
    nodes = []
    for node in graph.get("nodes") or []:
        node = dict(node)
        reference = node.pop("credential_id", None)
        if reference:
            found = None
            with contextlib.suppress(ValueError):
                found = credentials.get(uuid.UUID(str(reference)))
            need: dict[str, Any] = {"kind": found.kind if found else "unknown"}
            if found is not None and found.component_name:
                need["component"] = found.component_name
            node["credential_needed"] = need
        nodes.append(node)
    return {**graph, "nodes": nodes}
