"""Components added by image reference, pulled from a real registry (Debian's docker-registry on 127.0.0.1, with
htpasswd logins) onto a real engine (podman's Docker API) with the tenant's pull credentials from the vault;
the descriptor read from the image; the catalog entry pinned to the pulled digest; air-gapped adds."""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from app.config import MasterKey
from app.errors import ValidationError
from app.services import accounts, catalog
from app.services import credentials as credential_service
from app.services.catalog import TenantCatalog
from app.services.component_images import (
    ImageReference,
    RegistryError,
    add_image,
    parse_reference,
)
from app.storage.models import Component
from app.storage.scoping import tenant_session
from app.vault.store import Vault
from runtime.executors.docker import ContainerLimits, DockerExecutor
from runtime.net.egress import EgressPolicy
from runtime.steps.context import StepContext
from runtime.steps.executor import StepInvocation
from runtime.steps.message import Message
from tests.app.hub_runtime import HubRuntime
from tests.conftest import REGISTRY_USERS
from tests.container_engine import TEST_IMAGE, runner_mounts
from tests.registry_server import push_component_image, remove_pulled

PROBE = Path(__file__).resolve().parents[2] / "fixtures" / "components" / "probe"
[(USER, PASSWORD)] = REGISTRY_USERS.items()


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        (
            "registry.example.com:5000/team/crm:1.2",
            ImageReference("registry.example.com:5000", "team/crm", "1.2"),
        ),
        ("team/crm", ImageReference(None, "team/crm", "latest")),
        ("crm:2", ImageReference(None, "crm", "2")),
        ("localhost:5000/crm", ImageReference("localhost:5000", "crm", "latest")),
        (
            f"ghcr.io/acme/crm@sha256:{'a' * 64}",
            ImageReference("ghcr.io", "acme/crm", "latest", f"sha256:{'a' * 64}"),
        ),
    ],
)
def test_image_references_are_read_as_engines_read_them(reference: str, expected: ImageReference) -> None:
    assert parse_reference(reference) == expected


@pytest.mark.parametrize("reference", ["", "UPPER/case", "a b", "host:5000/", "crm:tag with space"])
def test_a_malformed_reference_is_refused_with_the_form_to_use(reference: str) -> None:
    with pytest.raises(
        ValidationError, match=r"is not an image reference: write it as registry\.example\.com"
    ):
        parse_reference(reference)


@pytest.fixture
def engine(container_engine) -> docker.DockerClient:
    return docker.DockerClient(base_url=container_engine.url)


@pytest.fixture
def pushed(engine: docker.DockerClient, registry) -> Iterator[str]:
    descriptor = json.loads((PROBE / "component.json").read_text())
    descriptor["version"] = "1.0.0"
    reference = push_component_image(engine, registry, descriptor, (USER, PASSWORD))
    yield reference
    remove_pulled(engine, reference)


@pytest.fixture
def vault() -> Vault:
    return Vault([MasterKey(key_id="k", key=os.urandom(32))])


def login(
    hub: HubRuntime, vault: Vault, registry_host: str, password: str, name: str = "Registry"
) -> uuid.UUID:
    editor = accounts.create_user(hub.db, f"ed-{uuid.uuid4().hex[:6]}@example.com", "a long password!!")
    accounts.add_member(hub.db, hub.tenant_id, editor.id, "editor")
    created = credential_service.create_credential(
        hub.db, vault, TenantCatalog(hub.db, hub.tenant_id), hub.tenant_id, editor.id, name=name, kind="registry",
        values={"registry": registry_host, "username": USER, "password": password},
    )  # fmt: skip
    return created.id


def test_an_image_is_pulled_with_the_tenants_login_catalogued_by_digest_and_runs(
    hub: HubRuntime, vault: Vault, engine: docker.DockerClient, registry, pushed: str
) -> None:
    with pytest.raises(RegistryError, match=f"The registry {registry.host} refused to pull .* it asks for a login: "
                       "add a container-registry credential"):  # fmt: skip
        add_image(hub.db, vault, engine, pushed, tenant_id=hub.tenant_id)

    wrong = login(hub, vault, registry.host, "not-the-password", name="Wrong")
    with pytest.raises(
        RegistryError, match="the login was refused: fix the tenant's container-registry credential"
    ):
        add_image(hub.db, vault, engine, pushed, tenant_id=hub.tenant_id, credential_id=wrong)

    other_tenant = hub.new_tenant("Other")
    login(hub, vault, registry.host, PASSWORD)  # the tenant's shared login for this registry is found by host
    result = add_image(hub.db, vault, engine, pushed, tenant_id=hub.tenant_id)
    assert (result.name, result.version) == ("probe", "1.0.0")
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        row = session.get(Component, result.component_id)
        assert row.runtime == "docker" and row.tenant_id == hub.tenant_id
        image = row.entry
    assert image.startswith(
        f"{registry.host}/team/probe@sha256:"
    )  # pinned: a new push to the tag changes nothing
    assert engine.images.get(image).id

    # The other tenant has no login for this registry: its pull is refused, the first tenant's login is its own.
    with pytest.raises(RegistryError, match="asks for a login"):
        add_image(hub.db, vault, engine, pushed, tenant_id=other_tenant)
    # ... and the image is the adding tenant's to run: a flow of it passes activation's check.
    from app.services import flows

    nodes = [{"id": "start", "component": "manual", "function": "start"},
             {"id": "echo", "component": "probe", "function": "echo"}]  # fmt: skip
    flow = flows.create_flow(
        hub.db, hub.tenant_id, "pulled", {"nodes": nodes, "edges": [{"source": "start", "target": "echo"}]}
    )
    components = TenantCatalog(hub.db, hub.tenant_id)
    flows.publish_flow(hub.db, hub.bus, components, hub.tenant_id, flow.id)
    assert (
        flows.activate_flow(hub.db, hub.bus, components, hub.tenant_id, flow.id, images=lambda _: None).status
        == "active"
    )

    command, volumes, environment = runner_mounts(PROBE)
    executor = DockerExecutor(client=engine, limits=ContainerLimits(memory_mb=256), command=command, volumes=volumes,
                              environment=environment, user="0")  # fmt: skip
    try:
        context = StepContext(tenant_id=hub.tenant_id.hex, flow_id="f", run_id="r", step_id="s", message_id="m",
                              attempt=1, egress=EgressPolicy())  # fmt: skip
        result = executor.execute(
            StepInvocation("probe", "echo", {}, Message(data={"n": 1}), context, 30, code=image)
        )
        assert result.ok, result.error
        assert result.outputs[0].data["data"] == {"n": 1}
    finally:
        executor.close()


def test_a_credential_for_another_registry_is_refused_by_name(
    hub: HubRuntime, vault: Vault, engine: docker.DockerClient, pushed: str
) -> None:
    elsewhere = login(hub, vault, "registry.example.com", PASSWORD, name="Elsewhere")
    with pytest.raises(
        ValidationError, match=r"'Elsewhere' is for the registry 'registry\.example\.com', not '127\.0\.0\.1"
    ):
        add_image(hub.db, vault, engine, pushed, tenant_id=hub.tenant_id, credential_id=elsewhere)


def test_errors_name_what_is_wrong(
    hub: HubRuntime, vault: Vault, engine: docker.DockerClient, registry
) -> None:
    login(hub, vault, registry.host, PASSWORD)
    with pytest.raises(
        RegistryError, match=f"The registry {registry.host} has no image .*/team/nothing-here:1"
    ):
        add_image(hub.db, vault, engine, f"{registry.host}/team/nothing-here:1", tenant_id=hub.tenant_id)
    with pytest.raises(RegistryError, match=r"cannot be reached .* load the image on the container engine"):
        add_image(hub.db, vault, engine, "127.0.0.1:9/team/probe:1", tenant_id=hub.tenant_id)


def test_air_gapped_an_image_loaded_on_the_engine_is_added_without_pulling(
    hub: HubRuntime, vault: Vault, engine: docker.DockerClient
) -> None:
    with pytest.raises(ValidationError, match="is not on the container engine: load it"):
        add_image(hub.db, vault, engine, "localhost/never-loaded:1", tenant_id=hub.tenant_id, pull=False)
    # The plain test image has neither the label nor /component/component.json.
    with pytest.raises(ValidationError, match="carries no component descriptor: give it the label"):
        add_image(hub.db, vault, engine, TEST_IMAGE, tenant_id=hub.tenant_id, pull=False)
    descriptor = json.loads((PROBE / "component.json").read_text())
    dockerfile = f"FROM {TEST_IMAGE}\nRUN mkdir -p /component && echo '{json.dumps(descriptor)}' > /component/component.json\n"
    loaded = f"localhost/hub-test-loaded:{uuid.uuid4().hex[:8]}"
    engine.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=loaded, rm=True)
    try:
        result = add_image(
            hub.db, vault, engine, loaded, tenant_id=hub.tenant_id, pull=False, name="probe-offline"
        )
        assert result.name == "probe-offline"
        assert "probe-offline" in [e.name for e in catalog.list_components(hub.db, hub.tenant_id)]
    finally:
        engine.images.remove(loaded, force=True)
