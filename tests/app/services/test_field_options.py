"""Dynamic selects: an imported component's model function lists the choices of a field, with the chosen
credential, in its sandboxed runner; what to do first, and the component's refusal with secrets masked."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from app.errors import NotFoundError, PermissionDeniedError, ValidationError
from app.keyring import MasterKey
from app.services import accounts, catalog
from app.services import credentials as credential_service
from app.services.catalog import TenantCatalog
from app.services.component_code import folder_resolver
from app.services.field_options import field_options
from app.vault.store import Vault
from runtime.executors.process import ProcessExecutor
from runtime.executors.sandbox import SandboxPolicy
from runtime.steps.credentials import MASK
from tests.app.hub_runtime import HubRuntime

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "components"
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")


@pytest.fixture
def lab(hub: HubRuntime, tmp_path: Path):
    components_dir = tmp_path / "components"
    catalog.import_folder(
        hub.db, FIXTURES / "sailor-demo", tenant_id=hub.tenant_id, components_dir=components_dir
    )
    catalog.import_folder(hub.db, FIXTURES / "probe", tenant_id=hub.tenant_id, components_dir=components_dir)
    vault = Vault([MasterKey(key_id="k", key=os.urandom(32))])
    editor = accounts.create_user(hub.db, f"ed-{uuid.uuid4().hex[:6]}@example.com", "a long password!!").id
    accounts.add_member(hub.db, hub.tenant_id, editor, "editor")
    components = TenantCatalog(hub.db, hub.tenant_id)
    executor = ProcessExecutor(folder_resolver(components_dir), SandboxPolicy())

    def credential(key: str, personal: bool = False, component: str = "sailor-demo", values=None) -> str:
        made = credential_service.create_credential(hub.db, vault, components, hub.tenant_id, editor,
                                                    name=f"Demo {key}", kind="fields", component_name=component,
                                                    values=values or {"apiKey": key}, personal=personal)  # fmt: skip
        return str(made.id)

    def choices(
        component: str, function: str, field: str, fields: dict, credential_id: str | None, user=None
    ):
        return field_options(hub.db, vault, components, {"process": executor}, hub.tenant_id,
                             editor if user is None else user, component, function, field, fields, credential_id)  # fmt: skip

    yield credential, choices, editor
    executor.close()


def test_the_components_model_function_lists_the_choices_with_the_credential(lab) -> None:
    credential, choices, _ = lab
    good = credential("good-key")
    assert choices("sailor-demo", "greet", "style", {"language": "fr"}, good) == {"warm": "Warm",
                                                                                 "formal": "Formal (fr)"}  # fmt: skip


def test_a_refusal_says_what_the_component_said_with_the_secret_masked(lab) -> None:
    credential, choices, _ = lab
    wrong = credential("a-secret-key-9f2")
    with pytest.raises(ValidationError) as caught:
        choices("sailor-demo", "greet", "style", {}, wrong)
    assert "could not list the choices of Style" in str(caught.value)
    assert "a-secret-key-9f2" not in str(caught.value) and MASK in str(caught.value)


def test_what_must_come_first(lab) -> None:
    _, choices, _ = lab
    with pytest.raises(ValidationError, match="Choose a credential first"):
        choices("sailor-demo", "greet", "style", {}, None)
    with pytest.raises(ValidationError, match="Fill in palette and apply"):
        choices("probe", "echo", "colour", {}, None)
    with pytest.raises(ValidationError, match="does not get its choices from the component"):
        choices("probe", "echo", "palette", {}, None)
    with pytest.raises(NotFoundError, match="not in this tenant's catalog"):
        choices("nope", "x", "y", {}, None)


def test_another_members_personal_credential_is_not_found(lab, hub: HubRuntime) -> None:
    credential, choices, _ = lab
    mine = credential("good-key", personal=True)
    other = accounts.create_user(hub.db, f"o-{uuid.uuid4().hex[:6]}@example.com", "a long password!!").id
    accounts.add_member(hub.db, hub.tenant_id, other, "editor")
    with pytest.raises(NotFoundError):
        choices("sailor-demo", "greet", "style", {}, mine, user=other)


def test_a_viewer_cannot_use_a_credential_to_list_choices(lab, hub: HubRuntime) -> None:
    credential, choices, _ = lab
    good = credential("good-key")
    viewer = accounts.create_user(hub.db, f"v-{uuid.uuid4().hex[:6]}@example.com", "a long password!!").id
    accounts.add_member(hub.db, hub.tenant_id, viewer, "viewer")
    with pytest.raises(PermissionDeniedError):
        choices("sailor-demo", "greet", "style", {}, good, user=viewer)


def test_a_credential_of_another_component_is_refused(lab) -> None:
    credential, choices, _ = lab
    mail = credential("mail", component="email", values={"host": "smtp.example.com", "port": "587",
                                                         "security": "starttls", "from": "a@example.com"})  # fmt: skip
    with pytest.raises(ValidationError, match="holds the fields of 'email'"):
        choices("sailor-demo", "greet", "style", {}, mail)


def test_a_step_that_takes_no_credential_gets_none(lab) -> None:
    credential, choices, _ = lab
    good = credential("good-key")
    with pytest.raises(ValidationError, match="takes no credential"):
        choices("probe", "echo", "colour", {"palette": "full"}, good)


def test_a_viewer_cannot_run_a_components_code_even_without_a_credential(lab, hub: HubRuntime) -> None:
    _, choices, _ = lab
    viewer = accounts.create_user(hub.db, f"v-{uuid.uuid4().hex[:6]}@example.com", "a long password!!").id
    accounts.add_member(hub.db, hub.tenant_id, viewer, "viewer")
    with pytest.raises(PermissionDeniedError):
        choices("probe", "echo", "colour", {"palette": "full"}, None, user=viewer)
