"""The Credentials page's service: kinds and their forms, write-only values, who sees and uses what, delete refused
while an active flow uses the credential, and the draft save refusing a credential its editor may not use."""

from __future__ import annotations

import os
import uuid

import pytest

from app.config import MasterKey
from app.errors import FlowInvalidError, NotFoundError, PermissionDeniedError, ValidationError
from app.services import accounts, flows
from app.services import credentials as service
from app.storage.models import Credential
from app.storage.scoping import tenant_session
from app.vault.store import Vault
from runtime.steps.credentials import MASK
from tests.app.hub_runtime import HubRuntime

SECRET = "pw-9d1e55c0-very-secret"


@pytest.fixture
def vault() -> Vault:
    return Vault([MasterKey(key_id="k", key=os.urandom(32))])


def member(hub: HubRuntime, role: str, tenant_id: uuid.UUID | None = None) -> uuid.UUID:
    user = accounts.create_user(hub.db, f"{role}-{uuid.uuid4().hex[:8]}@example.com", "a long password!!")
    accounts.add_member(hub.db, tenant_id or hub.tenant_id, user.id, role)
    return user.id


def smtp(hub: HubRuntime, vault: Vault, user: uuid.UUID, *, personal: bool = False, name: str = "Mail"):
    return service.create_credential(
        hub.db, vault, hub.components, hub.tenant_id, user, name=name, kind="fields", component_name="email",
        values={"host": "smtp.example.com", "port": "587", "security": "starttls", "username": "bot",
                "password": SECRET, "from": "bot@example.com"},
        personal=personal,
    )  # fmt: skip


def stored_values(hub: HubRuntime, vault: Vault, credential_id: uuid.UUID) -> dict:
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        return vault.reveal(session, session.get(Credential, credential_id))


def test_a_component_credential_is_saved_encrypted_and_shown_only_as_a_mask(
    hub: HubRuntime, vault: Vault
) -> None:
    editor = member(hub, "editor")
    view = smtp(hub, vault, editor)
    assert view.kind_label == "Component fields" and view.component_name == "email"
    assert view.values["password"] == MASK
    assert view.values["host"] == "smtp.example.com" and view.values["security"] == "starttls"
    again = service.get_credential(hub.db, vault, hub.components, hub.tenant_id, editor, view.id)
    assert SECRET not in repr(again) and again.values["password"] == MASK
    listed = service.list_credentials(hub.db, hub.tenant_id, editor)
    assert [c.name for c in listed] == ["Mail"] and SECRET not in repr(listed)
    assert stored_values(hub, vault, view.id)["password"] == SECRET


def test_editing_keeps_what_is_left_empty_and_replaces_what_is_typed(hub: HubRuntime, vault: Vault) -> None:
    editor = member(hub, "editor")
    view = smtp(hub, vault, editor)
    service.update_credential(
        hub.db, vault, hub.components, hub.tenant_id, editor, view.id, name="Mail (prod)",
        values={"host": "smtp.example.com", "password": "", "port": "", "from": "robot@example.com"},
    )  # fmt: skip
    saved = stored_values(hub, vault, view.id)
    assert saved["password"] == SECRET  # masked in the form: empty means keep
    assert saved["from"] == "robot@example.com"
    assert "port" not in saved  # shown in the form and emptied there: cleared
    service.update_credential(
        hub.db, vault, hub.components, hub.tenant_id, editor, view.id, values={"password": "new-password-123"}
    )
    assert stored_values(hub, vault, view.id)["password"] == "new-password-123"
    assert (
        service.get_credential(hub.db, vault, hub.components, hub.tenant_id, editor, view.id).name
        == "Mail (prod)"
    )


@pytest.mark.parametrize(
    ("kind", "values", "field", "message"),
    [
        ("basic", {"username": "u"}, "password", "Password is required."),
        ("api_key", {"header": "X-Key"}, "key", "API key is required."),
        ("oauth2_client", {"client_id": "c", "client_secret": "s"}, "token_url", "Token URL is required."),
    ],
)
def test_missing_values_are_named_per_field_and_nothing_is_saved(
    hub: HubRuntime, vault: Vault, kind: str, values: dict, field: str, message: str
) -> None:
    editor = member(hub, "editor")
    with pytest.raises(service.CredentialFieldsError) as refused:
        service.create_credential(hub.db, vault, hub.components, hub.tenant_id, editor, name="x", kind=kind,
                                  values=values)  # fmt: skip
    assert refused.value.errors == {field: message}
    assert service.list_credentials(hub.db, hub.tenant_id, editor) == []


def test_unknown_kinds_components_and_duplicate_names_are_refused(hub: HubRuntime, vault: Vault) -> None:
    editor = member(hub, "editor")
    create = service.create_credential
    with pytest.raises(ValidationError, match="'ssh' is not a kind of credential"):
        create(hub.db, vault, hub.components, hub.tenant_id, editor, name="x", kind="ssh", values={})
    with pytest.raises(ValidationError, match="no component named 'nope'"):
        create(hub.db, vault, hub.components, hub.tenant_id, editor, name="x", kind="fields",
               component_name="nope", values={})  # fmt: skip
    with pytest.raises(ValidationError, match="made with Connect"):
        create(hub.db, vault, hub.components, hub.tenant_id, editor, name="x", kind="oauth2_code", values={})
    smtp(hub, vault, editor)
    with pytest.raises(service.CredentialFieldsError, match="already a credential named 'mail'"):
        smtp(hub, vault, editor, name="mail")
    # A personal credential may share the name of a shared one (it is theirs alone).
    assert smtp(hub, vault, editor, name="Mail", personal=True).personal


def test_a_viewer_cannot_see_or_change_credentials(hub: HubRuntime, vault: Vault) -> None:
    editor, viewer = member(hub, "editor"), member(hub, "viewer")
    view = smtp(hub, vault, editor)
    with pytest.raises(PermissionDeniedError, match=r"Your role here \(viewer\) cannot see credentials"):
        service.list_credentials(hub.db, hub.tenant_id, viewer)
    with pytest.raises(PermissionDeniedError):
        service.get_credential(hub.db, vault, hub.components, hub.tenant_id, viewer, view.id)
    with pytest.raises(PermissionDeniedError):
        service.update_credential(hub.db, vault, hub.components, hub.tenant_id, viewer, view.id, name="mine")
    with pytest.raises(PermissionDeniedError):
        service.delete_credential(hub.db, hub.tenant_id, viewer, view.id)
    with pytest.raises(PermissionDeniedError):
        smtp(hub, vault, viewer, name="Viewer's")


def test_another_tenants_credential_and_another_members_personal_one_are_not_found(
    hub: HubRuntime, vault: Vault
) -> None:
    editor, colleague = member(hub, "editor"), member(hub, "admin")
    personal = smtp(hub, vault, editor, personal=True)
    other_tenant = hub.new_tenant("Other")
    outsider = member(hub, "owner", other_tenant)
    for tenant, user in ((other_tenant, outsider), (hub.tenant_id, colleague)):
        with pytest.raises(NotFoundError, match="does not exist"):
            service.get_credential(hub.db, vault, hub.components, tenant, user, personal.id)
        with pytest.raises(NotFoundError):
            service.update_credential(hub.db, vault, hub.components, tenant, user, personal.id, name="taken")
        with pytest.raises(NotFoundError):
            service.delete_credential(hub.db, tenant, user, personal.id)
    assert service.list_credentials(hub.db, hub.tenant_id, colleague) == []
    assert [c.name for c in service.list_credentials(hub.db, hub.tenant_id, editor)] == ["Mail"]


def _flow_using(
    hub: HubRuntime, credential_id: uuid.UUID, user: uuid.UUID | None, name: str = "Mailer"
) -> uuid.UUID:
    nodes = [
        {"id": "start", "component": "manual", "function": "start"},
        {"id": "mail", "component": "email", "function": "send", "credential_id": str(credential_id),
         "fields": {"to": "a@example.com", "subject": "s", "text": "t"}},
    ]  # fmt: skip
    flow = flows.create_flow(
        hub.db, hub.tenant_id, name, {"nodes": nodes, "edges": [{"source": "start", "target": "mail"}]}
    )
    flows.publish_flow(hub.db, hub.bus, hub.components, hub.tenant_id, flow.id, user_id=user)
    return flow.id


def test_delete_is_refused_while_an_active_flow_uses_the_credential(hub: HubRuntime, vault: Vault) -> None:
    editor = member(hub, "editor")
    view = smtp(hub, vault, editor)
    flow_id = _flow_using(hub, view.id, editor)
    flows.activate_flow(hub.db, hub.bus, hub.components, hub.tenant_id, flow_id)
    with pytest.raises(ValidationError, match="used by these active flows: Mailer"):
        service.delete_credential(hub.db, hub.tenant_id, editor, view.id)
    listed = service.list_credentials(hub.db, hub.tenant_id, editor)
    assert [(u.flow_name, u.active) for u in listed[0].used_by] == [("Mailer", True)]
    flows.deactivate_flow(hub.db, hub.bus, hub.components, hub.tenant_id, flow_id)
    assert service.delete_credential(hub.db, hub.tenant_id, editor, view.id) == "Mail"
    assert service.list_credentials(hub.db, hub.tenant_id, editor) == []


def test_a_fields_credential_of_another_component_is_refused_naming_the_node(
    hub: HubRuntime, vault: Vault
) -> None:
    editor = member(hub, "editor")
    database = service.create_credential(
        hub.db, vault, hub.components, hub.tenant_id, editor, name="DB", kind="fields", component_name="sql",
        values={"url": "postgresql://u:p@db.example.com/shop"},
    )  # fmt: skip
    with pytest.raises(FlowInvalidError, match="holds the fields of 'sql', not of 'email'") as refused:
        _flow_using(hub, database.id, editor)
    assert [p.node_id for p in refused.value.problems] == ["mail"]


def test_saving_a_draft_with_a_credential_the_editor_may_not_use_is_refused(
    hub: HubRuntime, vault: Vault
) -> None:
    owner, colleague = member(hub, "editor"), member(hub, "editor")
    personal = smtp(hub, vault, owner, personal=True)
    flow = flows.create_flow(hub.db, hub.tenant_id, "draft", {"nodes": [], "edges": []})
    graph = {"nodes": [{"id": "mail", "component": "email", "function": "send", "credential_id": str(personal.id)}],
             "edges": []}  # fmt: skip
    with pytest.raises(FlowInvalidError, match="node mail uses a credential you may not use"):
        flows.save_draft(hub.db, hub.tenant_id, flow.id, graph, expected_lock_version=flow.lock_version,
                         user_id=colleague)  # fmt: skip
    saved = flows.save_draft(hub.db, hub.tenant_id, flow.id, graph, expected_lock_version=flow.lock_version,
                             user_id=owner)  # fmt: skip
    # The colleague edits another part of the flow: the owner's node stays as it is.
    graph["nodes"].append({"id": "start", "component": "manual", "function": "start"})
    flows.save_draft(hub.db, hub.tenant_id, flow.id, graph, expected_lock_version=saved.lock_version,
                     user_id=colleague)  # fmt: skip
    # ... but publishing it as theirs is refused, naming the node.
    with pytest.raises(FlowInvalidError) as refused:
        flows.publish_flow(hub.db, hub.bus, hub.components, hub.tenant_id, flow.id, user_id=colleague)
    assert "mail" in [p.node_id for p in refused.value.problems]


def test_moving_a_credential_to_another_address_needs_its_secret_typed_again(
    hub: HubRuntime, vault: Vault
) -> None:
    """Otherwise an editor could send the saved password to a server of their own (Verify, or the next run)."""
    editor = member(hub, "editor")
    view = smtp(hub, vault, editor)
    with pytest.raises(service.CredentialFieldsError) as refused:
        service.update_credential(hub.db, vault, hub.components, hub.tenant_id, editor, view.id,
                                  values={"host": "smtp.attacker.example", "from": "bot@example.com"})  # fmt: skip
    assert "password" in refused.value.errors and "SMTP server changed" in refused.value.errors["password"]
    assert stored_values(hub, vault, view.id)["host"] == "smtp.example.com"
    service.update_credential(hub.db, vault, hub.components, hub.tenant_id, editor, view.id,
                              values={"host": "smtp2.example.com", "password": "typed-again-123",
                                      "from": "bot@example.com"})  # fmt: skip
    assert stored_values(hub, vault, view.id)["host"] == "smtp2.example.com"


def test_a_co_editor_cannot_change_a_node_that_holds_someone_elses_personal_credential(
    hub: HubRuntime, vault: Vault
) -> None:
    owner, colleague = member(hub, "editor"), member(hub, "editor")
    personal = smtp(hub, vault, owner, personal=True)
    node = {"id": "mail", "component": "email", "function": "send", "credential_id": str(personal.id),
            "fields": {"to": "'team@example.com'"}, "position": {"x": 0, "y": 0}}  # fmt: skip
    flow = flows.create_flow(hub.db, hub.tenant_id, "draft", {"nodes": [], "edges": []})
    saved = flows.save_draft(hub.db, hub.tenant_id, flow.id, {"nodes": [node], "edges": []},
                             expected_lock_version=flow.lock_version, user_id=owner)  # fmt: skip
    moved = {**node, "position": {"x": 40, "y": 10}}  # moving it on the canvas is fine
    saved = flows.save_draft(hub.db, hub.tenant_id, flow.id, {"nodes": [moved], "edges": []},
                             expected_lock_version=saved.lock_version, user_id=colleague)  # fmt: skip
    retargeted = {**moved, "fields": {"to": "'me@attacker.example'"}}
    with pytest.raises(FlowInvalidError, match="node mail uses a credential you may not use"):
        flows.save_draft(hub.db, hub.tenant_id, flow.id, {"nodes": [retargeted], "edges": []},
                         expected_lock_version=saved.lock_version, user_id=colleague)  # fmt: skip
