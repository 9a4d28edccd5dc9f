"""Verify: the component's own check against real servers (SMTP on 127.0.0.1, PostgreSQL), OAuth2 tokens against
a real provider; the outcome is kept on the credential and never shows the secret."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller

from app.config import MasterKey
from app.errors import PermissionDeniedError
from app.oauth.tokens import TokenKeeper
from app.processes.embedded_redis import free_port
from app.services import accounts
from app.services import credentials as service
from app.services.verification import verify_credential
from app.vault.store import Vault
from runtime.components.registry import spec_from_descriptor
from runtime.net.egress import EgressPolicy
from tests.app.hub_runtime import HubRuntime
from tests.conftest import OIDC_CLIENT_ID, OIDC_CLIENT_SECRET

LOCAL = EgressPolicy.parse("127.0.0.1")


class _Quiet:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


@pytest.fixture
def smtp_port() -> Iterator[int]:
    port = free_port()
    controller = Controller(_Quiet(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port
    controller.stop()


@pytest.fixture
def vault() -> Vault:
    return Vault([MasterKey(key_id="k", key=os.urandom(32))])


@pytest.fixture
def editor(hub: HubRuntime) -> uuid.UUID:
    user = accounts.create_user(hub.db, f"ed-{uuid.uuid4().hex[:8]}@example.com", "a long password!!")
    accounts.add_member(hub.db, hub.tenant_id, user.id, "editor")
    return user.id


def verify(hub: HubRuntime, vault: Vault, redis, user: uuid.UUID, credential_id: uuid.UUID, components=None):
    tokens = TokenKeeper(hub.db, lambda: vault, redis, LOCAL)
    return verify_credential(hub.db, vault, components or hub.components, tokens, LOCAL, hub.tenant_id, user,
                             credential_id)  # fmt: skip


def smtp_credential(hub, vault, editor, port) -> uuid.UUID:
    return service.create_credential(
        hub.db, vault, hub.components, hub.tenant_id, editor, name=f"Mail {port}", kind="fields",
        component_name="email", values={"host": "127.0.0.1", "port": str(port), "security": "none",
                                        "from": "bot@example.com", "password": "smtp-pass-4242"},
    ).id  # fmt: skip


def test_the_email_components_check_connects_and_the_outcome_is_kept(
    hub: HubRuntime, vault: Vault, redis, editor, smtp_port
) -> None:
    good = smtp_credential(hub, vault, editor, smtp_port)
    result = verify(hub, vault, redis, editor, good)
    assert (result.outcome, result.message) == ("ok", "connected to 127.0.0.1")
    closed = smtp_credential(hub, vault, editor, free_port())
    result = verify(hub, vault, redis, editor, closed)
    assert result.outcome == "failed" and "the SMTP server cannot be used" in result.message
    shown = {c.name: c for c in service.list_credentials(hub.db, hub.tenant_id, editor)}
    assert shown[f"Mail {smtp_port}"].status == "ok"
    broken = next(c for c in shown.values() if c.status == "error")
    assert broken.status_reason.startswith("Verify failed: the SMTP server cannot be used")


@pytest.mark.postgres
def test_the_sql_components_check_names_a_wrong_password_without_showing_it(
    hub: HubRuntime, vault: Vault, redis, editor, postgres_url
) -> None:
    parts = urlsplit(postgres_url.replace("+psycopg", ""))
    right = (
        f"postgresql://{parts.username or 'postgres'}@{parts.hostname}:{parts.port or 5432}/{parts.path[1:]}"
    )
    database = service.create_credential(hub.db, vault, hub.components, hub.tenant_id, editor, name="DB",
                                         kind="fields", component_name="sql", values={"url": right})  # fmt: skip
    assert verify(hub, vault, redis, editor, database.id).outcome == "ok"
    wrong_host = right.replace(f"@{parts.hostname}:{parts.port or 5432}", f"@127.0.0.1:{free_port()}")
    service.update_credential(hub.db, vault, hub.components, hub.tenant_id, editor, database.id,
                              values={"url": wrong_host})  # fmt: skip
    result = verify(hub, vault, redis, editor, database.id)
    assert result.outcome == "failed" and "refused the connection" in result.message
    assert wrong_host not in result.message


def test_kinds_and_components_without_a_check_say_so(hub: HubRuntime, vault: Vault, redis, editor) -> None:
    key = service.create_credential(hub.db, vault, hub.components, hub.tenant_id, editor, name="Key",
                                    kind="api_key", values={"key": "k-123456"})  # fmt: skip
    result = verify(hub, vault, redis, editor, key.id)
    assert result.outcome == "unchecked" and "checked when a step uses it" in result.message
    imported = spec_from_descriptor(
        "crm", {"title": "CRM", "credentials": {"fields": {"apiKey": {"label": "Key", "viewClass": "TextFieldView"}}},
                "actions": {"go": {"main": "./go.js"}}}, runtime="docker",
    )  # fmt: skip
    components = hub.components.with_components(imported)
    crm = service.create_credential(hub.db, vault, components, hub.tenant_id, editor, name="CRM", kind="fields",
                                    component_name="crm", values={"apiKey": "k-654321"})  # fmt: skip
    result = verify(hub, vault, redis, editor, crm.id, components)
    assert result.outcome == "unchecked" and "runs in the component's container" in result.message


def test_an_oauth2_client_credential_is_verified_by_getting_a_token(
    hub: HubRuntime, vault: Vault, redis, editor, oidc_server
) -> None:
    machine = service.create_credential(
        hub.db, vault, hub.components, hub.tenant_id, editor, name="Machine", kind="oauth2_client",
        values={"token_url": f"{oidc_server.issuer}/token", "client_id": OIDC_CLIENT_ID,
                "client_secret": OIDC_CLIENT_SECRET},
    )  # fmt: skip
    assert verify(hub, vault, redis, editor, machine.id).outcome == "ok"
    service.update_credential(hub.db, vault, hub.components, hub.tenant_id, editor, machine.id,
                              values={"client_secret": "wrong-secret-000"})  # fmt: skip
    oidc_server.reset()
    # The token fetched by the first check is still good: force the next one to ask the provider.
    from tests.app.oauth.test_connect_and_refresh import make_due

    make_due(hub, vault, machine.id)
    result = verify(hub, vault, redis, editor, machine.id)
    assert (
        result.outcome == "failed"
        and "invalid_client" in result.message
        and "wrong-secret" not in result.message
    )


def test_a_viewer_cannot_verify(hub: HubRuntime, vault: Vault, redis, editor) -> None:
    key = service.create_credential(hub.db, vault, hub.components, hub.tenant_id, editor, name="Key",
                                    kind="api_key", values={"key": "k-123456"})  # fmt: skip
    viewer = accounts.create_user(hub.db, f"v-{uuid.uuid4().hex[:8]}@example.com", "a long password!!")
    accounts.add_member(hub.db, hub.tenant_id, viewer.id, "viewer")
    with pytest.raises(PermissionDeniedError):
        verify(hub, vault, redis, viewer.id, key.id)


def test_an_image_components_own_check_runs_in_its_container(
    hub: HubRuntime, vault: Vault, redis, editor
) -> None:
    """The docker executor's runner answers the verify request (tests/runtime/executors/test_parent_images.py
    runs a real one); here, that the check goes to the container executor, with the credential's values only."""
    import dataclasses

    asked: list[tuple] = []

    class Containers:
        def verify(self, tenant: str, image: str, credential: dict) -> tuple[bool, str | None]:
            asked.append((tenant, image, credential))
            return credential.get("apiKey") == "good", "the API key is not accepted"

    imported = spec_from_descriptor(
        "crm", {"title": "CRM", "credentials": {"fields": {"apiKey": {"label": "Key", "viewClass": "TextFieldView"}}},
                "actions": {"go": {"main": "./go.js"}}}, runtime="docker",
    )  # fmt: skip
    components = hub.components.with_components(
        dataclasses.replace(imported, code="registry.example.com/crm:1")
    )
    crm = service.create_credential(hub.db, vault, components, hub.tenant_id, editor, name="CRM", kind="fields",
                                    component_name="crm", values={"apiKey": "bad"})  # fmt: skip
    tokens = TokenKeeper(hub.db, lambda: vault, redis, LOCAL)
    result = verify_credential(hub.db, vault, components, tokens, LOCAL, hub.tenant_id, editor, crm.id,
                               runners={"process": None, "docker": Containers()})  # fmt: skip
    assert (result.outcome, result.message) == ("failed", "the API key is not accepted")
    assert asked == [(hub.tenant_id.hex, "registry.example.com/crm:1", {"apiKey": "bad"})]
