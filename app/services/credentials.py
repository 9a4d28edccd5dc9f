"""The Credentials page's service: list, create, edit (write-only values), delete; who may see and use which.

A credential is shared with the tenant (owner_user_id NULL) or personal to one member. Only editors, admins and
owners see credentials at all; a personal credential is visible and usable only by its owner (for everyone else
it does not exist). Values go into the vault and never come back out of this module, except the few that name
things (see app.vault.kinds)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.errors import NotFoundError, ValidationError
from app.runtime_ids import runtime_id
from app.services import audit
from app.services.field_values import EMPTY, cleaned_values, field_errors
from app.services.members import EDITORS, require_role
from app.storage.db import Database
from app.storage.models import Credential, Flow, FlowStatus, FlowVersion, Webhook
from app.storage.scoping import tenant_session
from app.vault.kinds import BUILTIN_TYPES, kind_label, shown_again
from app.vault.store import Vault
from runtime.bus.streams import StreamsBus
from runtime.components.descriptor import DescriptorError, FieldDef, parse_descriptor
from runtime.components.spec import ComponentResolver
from runtime.steps.credentials import MASK

NOT_FOUND = "This credential does not exist (or is not yours to see)."


class CredentialFieldsError(ValidationError):
    """Some values cannot be saved; `errors` maps each field's name to what is wrong with it."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("Some values are missing or wrong: " + "; ".join(errors.values()))
        self.errors = errors


@dataclass(frozen=True)
class Usage:
    flow_id: uuid.UUID
    flow_name: str
    active: bool


@dataclass(frozen=True)
class CredentialView:
    """What the UI and the API may show of a credential: never a secret value."""

    id: uuid.UUID
    name: str
    kind: str
    kind_label: str
    component_name: str | None
    personal: bool
    status: str
    status_reason: str | None
    account: str  # OAuth2: who signed in
    oauth_client: str  # OAuth2: the id of the client it was connected with
    last_used_at: dt.datetime | None
    updated_at: dt.datetime
    values: dict[str, str]  # field -> the value where it may be shown again, else the mask
    used_by: tuple[Usage, ...]


# -- the fields of each kind ------------------------------------------------------------------------------------
def form_fields(
    components: ComponentResolver, kind: str, component_name: str | None = None
) -> list[FieldDef]:
    """The fields a person fills in for a credential of `kind` (for "fields": the component's own)."""
    if kind == "fields":
        if not component_name:
            raise ValidationError("A component's credential needs the component: choose one.")
        spec = components.get(component_name)
        if spec is None:
            raise ValidationError(f"There is no component named {component_name!r} in the catalog.")
        try:
            fields = parse_descriptor(spec.descriptor, name=component_name).descriptor.credential_fields
        except DescriptorError as exc:
            raise ValidationError(f"{component_name}: its descriptor cannot be read ({exc}).") from None
        if not fields:
            raise ValidationError(f"{spec.title} declares no credential fields; choose another kind.")
        return fields
    found = BUILTIN_TYPES.get(kind)
    if found is None:
        known = ", ".join(["fields", *BUILTIN_TYPES])
        raise ValidationError(f"{kind!r} is not a kind of credential; use one of {known}.")
    if not found.entered_by_hand:
        raise ValidationError(f"An {found.label} is made with Connect, not typed in.")
    return list(found.fields)


def _clean(fields: list[FieldDef], values: dict[str, Any]) -> dict[str, Any]:
    """The values of the declared fields only, trimmed; a checkbox as a boolean; JSON kept as typed."""
    return cleaned_values(fields, values, parse_json=False)


def _checked(fields: list[FieldDef], values: dict[str, Any]) -> dict[str, Any]:
    errors = field_errors(fields, values)
    if errors:
        raise CredentialFieldsError(errors)
    return values


# -- reading ----------------------------------------------------------------------------------------------------
def visible_credential(session: Session, user_id: uuid.UUID | None, credential_id: uuid.UUID) -> Credential:
    credential = session.get(Credential, credential_id)
    if (
        credential is None
        or (credential.meta or {}).get("purpose") == "webhook"  # kept with its flow's webhook settings
        or (credential.owner_user_id is not None and credential.owner_user_id != user_id)
    ):
        raise NotFoundError(NOT_FOUND)
    return credential


def usage(session: Session, credential_id: uuid.UUID) -> list[Usage]:
    """The flows whose draft, published version or webhook settings name the credential."""
    ref = str(credential_id)

    def names(graph: dict[str, Any] | None) -> bool:
        return any(node.get("credential_id") == ref for node in (graph or {}).get("nodes", []))

    found: dict[uuid.UUID, Flow] = {}
    for flow in session.scalars(sa.select(Flow)):
        if names(flow.graph):
            found[flow.id] = flow
    published = sa.select(Flow, FlowVersion.graph).join(
        FlowVersion, FlowVersion.id == Flow.current_version_id
    )
    for flow, graph in session.execute(published):
        if names(graph):
            found[flow.id] = flow
    for hook in session.scalars(sa.select(Webhook).where(Webhook.revoked_at.is_(None))):
        if (hook.settings or {}).get("credential_id") == ref and hook.flow_id not in found:
            flow = session.get(Flow, hook.flow_id)
            if flow is not None:
                found[flow.id] = flow
    return sorted(
        (Usage(f.id, f.name, f.status == FlowStatus.ACTIVE.value) for f in found.values()),
        key=lambda u: u.flow_name.lower(),
    )


def _fields_for_view(components: ComponentResolver | None, credential: Credential) -> list[FieldDef] | None:
    if credential.kind != "fields":
        found = BUILTIN_TYPES.get(credential.kind)
        return list(found.fields) if found else None
    if components is None:
        return None
    try:
        return form_fields(components, "fields", credential.component_name)
    except ValidationError:
        return None


def _view(
    credential: Credential, fields: list[FieldDef] | None, plain: dict[str, Any] | None, used: list[Usage]
) -> CredentialView:
    values: dict[str, str] = {}
    names = (
        [f.name for f in fields] if fields is not None else list((credential.meta or {}).get("fields", []))
    )
    by_name = {f.name: f for f in fields or []}
    for name in names:
        field = by_name.get(name)
        stored = (plain or {}).get(name)
        if stored in EMPTY or stored is False:
            values[name] = ""
        elif field is not None and shown_again(field):
            values[name] = "on" if stored is True else str(stored)
        else:
            values[name] = MASK
    meta = credential.meta or {}
    return CredentialView(
        id=credential.id,
        name=credential.name,
        kind=credential.kind,
        kind_label=kind_label(credential.kind),
        component_name=credential.component_name,
        personal=credential.owner_user_id is not None,
        status=credential.status,
        status_reason=credential.status_reason,
        account=str(meta.get("account") or ""),
        oauth_client=str(meta.get("oauth_client") or ""),
        last_used_at=credential.last_used_at,
        updated_at=credential.updated_at,
        values=values,
        used_by=tuple(used),
    )


def list_credentials(
    db: Database,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID | None,
    *,
    kinds: tuple[str, ...] | None = None,
    component_name: str | None = None,
) -> list[CredentialView]:
    """The credentials the user may see: the tenant's shared ones and their own personal ones. `kinds` and
    `component_name` narrow the list to what a step can take (the designer's credential picker)."""
    with tenant_session(db.sessions, tenant_id) as session:
        require_role(session, user_id, EDITORS, "see credentials")
        query = sa.select(Credential).where(
            sa.or_(Credential.owner_user_id.is_(None), Credential.owner_user_id == user_id)
        )
        if kinds is not None:
            query = query.where(Credential.kind.in_(kinds))
        rows = [
            c
            for c in session.scalars(query.order_by(sa.func.lower(Credential.name)))
            if (c.meta or {}).get("purpose") != "webhook"
            and (component_name is None or c.kind != "fields" or c.component_name == component_name)
        ]
        return [_view(c, None, None, usage(session, c.id)) for c in rows]


def get_credential(
    db: Database,
    vault: Vault,
    components: ComponentResolver,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID | None,
    credential_id: uuid.UUID,
) -> CredentialView:
    """One credential for its edit form: the values that may be shown again, the mask for the others."""
    with tenant_session(db.sessions, tenant_id) as session:
        require_role(session, user_id, EDITORS, "see credentials")
        credential = visible_credential(session, user_id, credential_id)
        return _view(
            credential,
            _fields_for_view(components, credential),
            vault.reveal(session, credential),
            usage(session, credential.id),
        )


# -- changing ---------------------------------------------------------------------------------------------------
def _check_name(
    session: Session, name: str, owner: uuid.UUID | None, except_id: uuid.UUID | None = None
) -> str:
    name = name.strip()
    if not name:
        raise CredentialFieldsError({"__name": "A credential needs a name."})
    if len(name) > 200:
        raise CredentialFieldsError({"__name": "A credential's name is at most 200 characters."})
    clash = session.scalar(
        sa.select(Credential.id).where(
            sa.func.lower(Credential.name) == name.lower(),
            Credential.owner_user_id.is_(None) if owner is None else Credential.owner_user_id == owner,
            Credential.id != except_id if except_id else sa.true(),
        )
    )
    if clash is not None:
        raise CredentialFieldsError({"__name": f"There is already a credential named {name!r}."})
    return name


def create_credential(
    db: Database,
    vault: Vault,
    components: ComponentResolver,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID | None,
    *,
    name: str,
    kind: str,
    values: dict[str, Any],
    component_name: str | None = None,
    personal: bool = False,
) -> CredentialView:
    fields = form_fields(components, kind, component_name)
    cleaned = _checked(fields, _clean(fields, values))
    with tenant_session(db.sessions, tenant_id) as session:
        require_role(session, user_id, EDITORS, "create credentials")
        owner = user_id if personal else None
        credential = vault.store(
            session,
            tenant_id,
            name=_check_name(session, name, owner),
            kind=kind,
            values=cleaned,
            component_name=component_name if kind == "fields" else None,
            owner_user_id=owner,
            meta={"fields": [f.name for f in fields]},
            created_by=user_id,
        )
        audit.record(
            session,
            "credential.created",
            tenant_id=tenant_id,
            actor_user_id=user_id,
            target_type="credential",
            target_id=credential.id,
            kind=kind,
        )
        return _view(credential, fields, cleaned, [])


ADDRESS_HINTS = ("host", "url", "uri", "endpoint", "server", "domain")


def _check_not_moved(fields: list[FieldDef], saved: dict[str, Any], typed: dict[str, Any]) -> None:
    """A saved secret is not sent to a new address: whoever points the credential elsewhere (another server,
    another token URL) types its secrets again, so an editor cannot collect them with a server of their own."""
    moved = [
        f
        for f in fields
        if shown_again(f)
        and any(hint in f.name.lower() for hint in ADDRESS_HINTS)
        and f.name in typed
        and str(typed[f.name]) != str(saved.get(f.name, ""))
    ]
    kept = [
        f for f in fields if not shown_again(f) and saved.get(f.name) not in EMPTY and f.name not in typed
    ]
    if moved and kept:
        where = moved[0].label
        raise CredentialFieldsError(
            {f.name: f"{where} changed: type {f.label} again (a saved secret is not sent to a new address)."
             for f in kept}
        )  # fmt: skip


def update_credential(
    db: Database,
    vault: Vault,
    components: ComponentResolver,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID | None,
    credential_id: uuid.UUID,
    *,
    name: str | None = None,
    values: dict[str, Any] | None = None,
    changes: StreamsBus | None = None,
) -> CredentialView:
    """Rename and/or change values. A field left empty keeps its saved value (the form never holds secrets), so
    a person changes one password without typing the others again. `changes`: where workers learn of it (their
    cached copies are read again within a second)."""
    with tenant_session(db.sessions, tenant_id) as session:
        require_role(session, user_id, EDITORS, "change credentials")
        credential = visible_credential(session, user_id, credential_id)
        if name is not None:
            credential.name = _check_name(session, name, credential.owner_user_id, credential.id)
        fields = None
        saved = vault.reveal(session, credential)
        if values is not None:
            if credential.kind == "oauth2_code":
                raise ValidationError("An OAuth2 connection's tokens come from the provider: use Reconnect.")
            fields = form_fields(components, credential.kind, credential.component_name)
            typed = _clean(fields, values)
            _check_not_moved(fields, saved, typed)
            merged = {**saved, **typed}
            for field in fields:  # a value shown in the form and emptied there is cleared, not kept
                if shown_again(field) and field.name in values and field.name not in typed:
                    merged.pop(field.name, None)
            saved = _checked(fields, {f.name: merged[f.name] for f in fields if f.name in merged})
            vault.replace_values(session, credential, saved)
            credential.status, credential.status_reason = "ok", None
        credential.updated_at = dt.datetime.now(dt.UTC)
        audit.record(
            session,
            "credential.updated",
            tenant_id=tenant_id,
            actor_user_id=user_id,
            target_type="credential",
            target_id=credential.id,
            values_changed=values is not None,
        )
        view = _view(
            credential,
            fields or _fields_for_view(components, credential),
            saved,
            usage(session, credential.id),
        )
    announce_change(changes, tenant_id)
    return view


def delete_credential(
    db: Database,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID | None,
    credential_id: uuid.UUID,
    changes: StreamsBus | None = None,
) -> str:
    """Delete a credential; refused while an active flow uses it (the message lists those flows). Returns its
    name."""
    with tenant_session(db.sessions, tenant_id) as session:
        require_role(session, user_id, EDITORS, "delete credentials")
        credential = visible_credential(session, user_id, credential_id)
        active = [u.flow_name for u in usage(session, credential.id) if u.active]
        if active:
            raise ValidationError(
                f"{credential.name!r} is used by these active flows: {', '.join(active)}. "
                "Deactivate them or give them another credential first."
            )
        name = credential.name
        session.delete(credential)
        audit.record(
            session,
            "credential.deleted",
            tenant_id=tenant_id,
            actor_user_id=user_id,
            target_type="credential",
            target_id=credential_id,
            name=name,
        )
    announce_change(changes, tenant_id)
    return name


def announce_change(changes: StreamsBus | None, tenant_id: uuid.UUID) -> None:
    if changes is not None:
        changes.credentials_changed(runtime_id(tenant_id))
