"""An imported Python component's code is installed where the workers' runners load it, and a published flow runs
its step in a sandboxed runner process (the whole path: catalog import -> publish -> worker -> runner)."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

import pytest

from app.services import catalog, flows
from app.services.catalog import TenantCatalog
from app.services.component_code import FOLDER_PREFIX, folder_resolver
from app.storage.models import Component
from app.storage.scoping import tenant_session
from runtime.executors.process import ProcessExecutor
from runtime.executors.sandbox import SandboxPolicy
from runtime.steps.executor import InlineExecutor
from runtime.worker import Worker, WorkerConfig
from tests.app.hub_runtime import HubRuntime

PROBE = Path(__file__).resolve().parents[2] / "fixtures" / "components" / "probe"


def test_an_imported_python_component_runs_in_a_runner_from_its_installed_code(
    hub: HubRuntime, tmp_path: Path
) -> None:
    components_dir = tmp_path / "components"
    result = catalog.import_folder(hub.db, PROBE, tenant_id=hub.tenant_id, components_dir=components_dir)
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        entry = session.get(Component, result.component_id).entry
    assert entry == f"{FOLDER_PREFIX}{hub.tenant_id.hex}/probe/{result.version}"
    installed = components_dir / entry.removeprefix(FOLDER_PREFIX)
    assert (installed / "probe.py").is_file() and oct(installed.stat().st_mode)[-3:] == "755"

    nodes = [{"id": "start", "component": "manual", "function": "start"},
             {"id": "echo", "component": "probe", "function": "echo"}]  # fmt: skip
    flow = flows.create_flow(
        hub.db, hub.tenant_id, "probe", {"nodes": nodes, "edges": [{"source": "start", "target": "echo"}]}
    )
    components = TenantCatalog(hub.db, hub.tenant_id)
    flows.publish_flow(hub.db, hub.bus, components, hub.tenant_id, flow.id)
    executor = ProcessExecutor(folder_resolver(components_dir), SandboxPolicy())
    hub.workers.append(
        Worker(
            hub.bus,
            hub.components,
            WorkerConfig(name="w", block_ms=10, housekeeping_interval_s=0.02),
            executors={"inline": InlineExecutor(), "process": executor},
        )
    )
    try:
        from app.services import runs

        run_id = runs.start_manual_run(hub.db, hub.bus, components, hub.tenant_id, flow.id, {"order": 7})
        hub.drive(lambda: hub.finished(run_id))
        [step] = [s for s in hub.steps(run_id) if s.step_id == "echo"]
        assert step.status == "succeeded", step.error
        assert step.executor == "process" and step.output[0]["data"] == {"order": 7}
        assert step.instance is not None and step.instance.startswith("pid ")  # recorded: where it ran
    finally:
        executor.close()


def test_the_resolver_stays_inside_the_components_folder(tmp_path: Path) -> None:
    (tmp_path / "components" / "global" / "x" / "1").mkdir(parents=True)
    (tmp_path / "components" / "global" / "x" / "1" / "component.json").write_text("{}")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "component.json").write_text("{}")
    folder_of = folder_resolver(tmp_path / "components")
    assert (
        folder_of(f"{FOLDER_PREFIX}global/x/1") == (tmp_path / "components" / "global" / "x" / "1").resolve()
    )
    assert folder_of(f"{FOLDER_PREFIX}../outside") is None
    assert folder_of("probe") is None  # a module name (imported without its folder): no code here
    assert folder_of(f"{FOLDER_PREFIX}global/missing/{uuid.uuid4().hex}") is None


SAILOR = Path(__file__).resolve().parents[2] / "fixtures" / "components" / "sailor-demo"


def test_an_elasticio_nodejs_component_runs_unmodified_and_verifies_its_credentials(
    hub: HubRuntime, tmp_path: Path, redis
) -> None:
    import os

    from app.config import MasterKey
    from app.oauth.tokens import TokenKeeper
    from app.services import accounts, runs
    from app.services import credentials as credential_service
    from app.services.verification import verify_credential
    from app.vault.store import Vault
    from runtime.net.egress import EgressPolicy

    components_dir = tmp_path / "components"
    result = catalog.import_folder(hub.db, SAILOR, tenant_id=hub.tenant_id, components_dir=components_dir)
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        row = session.get(Component, result.component_id)
        assert (row.runtime, row.entry.startswith(FOLDER_PREFIX)) == ("nodejs", True)
    components = TenantCatalog(hub.db, hub.tenant_id)
    vault = Vault([MasterKey(key_id="k", key=os.urandom(32))])
    editor = accounts.create_user(hub.db, f"ed-{uuid.uuid4().hex[:6]}@example.com", "a long password!!")
    accounts.add_member(hub.db, hub.tenant_id, editor.id, "editor")
    good = credential_service.create_credential(hub.db, vault, components, hub.tenant_id, editor.id, name="Demo",
                                                kind="fields", component_name="sailor-demo",
                                                values={"apiKey": "good-key"})  # fmt: skip
    executor = ProcessExecutor(folder_resolver(components_dir), SandboxPolicy())
    try:
        tokens = TokenKeeper(hub.db, lambda: vault, redis)
        check = verify_credential(hub.db, vault, components, tokens, EgressPolicy(), hub.tenant_id, editor.id, good.id,
                                  runners={"process": executor})  # fmt: skip
        assert (check.outcome, check.message) == ("ok", "Sailor demo accepted the credential (its own check)")
        credential_service.update_credential(hub.db, vault, components, hub.tenant_id, editor.id, good.id,
                                             values={"apiKey": "wrong"})  # fmt: skip
        check = verify_credential(hub.db, vault, components, tokens, EgressPolicy(), hub.tenant_id, editor.id, good.id,
                                  runners={"process": executor})  # fmt: skip
        assert (check.outcome, check.message) == ("failed", "the API key is not accepted")

        nodes = [{"id": "start", "component": "manual", "function": "start"},
                 {"id": "split", "component": "sailor-demo", "function": "legacy"}]  # fmt: skip
        flow = flows.create_flow(
            hub.db, hub.tenant_id, "node", {"nodes": nodes, "edges": [{"source": "start", "target": "split"}]}
        )
        flows.publish_flow(hub.db, hub.bus, components, hub.tenant_id, flow.id)
        hub.workers.append(
            Worker(
                hub.bus,
                hub.components,
                WorkerConfig(name="w", block_ms=10, housekeeping_interval_s=0.02),
                executors={"inline": InlineExecutor(), "process": executor},
            )
        )
        run_id = runs.start_manual_run(
            hub.db, hub.bus, components, hub.tenant_id, flow.id, {"items": ["a", "b"]}
        )
        hub.drive(lambda: hub.finished(run_id))
        [step] = [s for s in hub.steps(run_id) if s.step_id == "split"]
        assert step.status == "succeeded", step.error
        assert step.output == [{"item": "a"}, {"item": "b"}]
    finally:
        executor.close()


def test_activating_a_flow_whose_step_cannot_run_here_fails_at_once_naming_the_node(
    hub: HubRuntime, tmp_path: Path
) -> None:
    from app.errors import FlowInvalidError
    from app.services.plans import get_flow

    descriptor_only = catalog.import_descriptor(hub.db, (PROBE / "component.json").read_bytes(), name="probe-no-code",
                                                tenant_id=hub.tenant_id)  # fmt: skip
    image = {"title": "CRM", "x-hub": {"image": "registry.example.com/crm", "tag": "1.0"},
             "actions": {"sync": {"title": "Sync", "main": "./sync.js"}}}  # fmt: skip
    catalog.import_descriptor(hub.db, image, name="crm", tenant_id=hub.tenant_id)
    components = TenantCatalog(hub.db, hub.tenant_id)
    for component, function, expected in (
        (descriptor_only.name, "echo", "was not imported with it; import the component's folder"),
        (
            "crm",
            "sync",
            "runs in a container image (registry.example.com/crm:1.0) and this hub has no docker",
        ),
    ):
        nodes = [{"id": "start", "component": "manual", "function": "start"},
                 {"id": "step", "component": component, "function": function}]  # fmt: skip
        flow = flows.create_flow(
            hub.db,
            hub.tenant_id,
            component,
            {"nodes": nodes, "edges": [{"source": "start", "target": "step"}]},
        )
        flows.publish_flow(hub.db, hub.bus, components, hub.tenant_id, flow.id)
        with pytest.raises(FlowInvalidError, match=re.escape(expected)) as refused:
            flows.activate_flow(hub.db, hub.bus, components, hub.tenant_id, flow.id)
        assert [p.node_id for p in refused.value.problems] == ["step"]
        with tenant_session(hub.db.sessions, hub.tenant_id) as session:
            stored = get_flow(session, flow.id)
            assert stored.status == "error" and expected in (stored.status_reason or "")
    catalog.import_folder(hub.db, PROBE, tenant_id=hub.tenant_id, components_dir=tmp_path / "components")
    nodes = [{"id": "start", "component": "manual", "function": "start"},
             {"id": "step", "component": "probe", "function": "echo"}]  # fmt: skip
    flow = flows.create_flow(
        hub.db, hub.tenant_id, "runnable", {"nodes": nodes, "edges": [{"source": "start", "target": "step"}]}
    )
    flows.publish_flow(hub.db, hub.bus, components, hub.tenant_id, flow.id)
    assert (
        flows.activate_flow(
            hub.db, hub.bus, TenantCatalog(hub.db, hub.tenant_id), hub.tenant_id, flow.id
        ).status
        == "active"
    )


def test_with_a_docker_executor_activation_checks_the_image_is_on_the_engine(hub: HubRuntime) -> None:
    from app.errors import FlowInvalidError

    image = {"title": "CRM", "x-hub": {"image": "registry.example.com/crm", "tag": "2.0"},
             "actions": {"sync": {"title": "Sync", "main": "./sync.js"}}}  # fmt: skip
    catalog.import_descriptor(
        hub.db, image, name="crm"
    )  # an operator's global import: every tenant may run it
    components = TenantCatalog(hub.db, hub.tenant_id)
    nodes = [{"id": "start", "component": "manual", "function": "start"},
             {"id": "step", "component": "crm", "function": "sync"}]  # fmt: skip
    flow = flows.create_flow(
        hub.db, hub.tenant_id, "crm", {"nodes": nodes, "edges": [{"source": "start", "target": "step"}]}
    )
    flows.publish_flow(hub.db, hub.bus, components, hub.tenant_id, flow.id)
    asked: list[str] = []

    def missing(image_ref: str) -> str:
        asked.append(image_ref)
        return f"the image {image_ref!r} is not on the container engine"

    with pytest.raises(
        FlowInvalidError, match=re.escape("'CRM': the image 'registry.example.com/crm:2.0' is not on")
    ):
        flows.activate_flow(hub.db, hub.bus, components, hub.tenant_id, flow.id, images=missing)
    assert asked == ["registry.example.com/crm:2.0"]
    assert (
        flows.activate_flow(hub.db, hub.bus, components, hub.tenant_id, flow.id, images=lambda _: None).status
        == "active"
    )


def test_installing_code_copies_no_outside_secret_and_stays_in_its_folder(
    hub: HubRuntime, tmp_path: Path
) -> None:
    from app.errors import ValidationError
    from app.services.component_code import code_path, install_code

    secret = tmp_path / "outside.env"
    secret.write_text("HUB_SECRET_KEYS=k1:...")
    source = tmp_path / "comp"
    shutil.copytree(PROBE, source)
    (source / "conf.json").symlink_to(secret)  # a link out of the folder
    (source / "inner.py").symlink_to(source / "probe.py")  # a link inside it is fine
    entry = install_code(tmp_path / "components", code_path(hub.tenant_id, "comp", "1.0"), source)
    installed = tmp_path / "components" / entry.removeprefix(FOLDER_PREFIX)
    assert not (installed / "conf.json").exists() and (installed / "inner.py").exists()
    for version in ("../../global/probe/2.0", "..", "a/b"):
        with pytest.raises(ValidationError, match="cannot name a folder"):
            code_path(hub.tenant_id, "comp", version)
    with pytest.raises(ValidationError, match="'folder:' names code the hub installed itself"):
        catalog.import_descriptor(hub.db, {"title": "X", "x-hub": {"entry_point": f"folder:{uuid.uuid4().hex}/x/1"},
                                           "actions": {"go": {"main": "x"}}}, tenant_id=hub.tenant_id)  # fmt: skip


def test_a_runner_is_not_started_for_another_tenants_code(tmp_path: Path) -> None:
    from runtime.net.egress import EgressPolicy
    from runtime.steps.context import StepContext
    from runtime.steps.executor import StepInvocation
    from runtime.steps.message import Message

    executor = ProcessExecutor(lambda _: PROBE, SandboxPolicy())
    context = StepContext(tenant_id="tenant-a", flow_id="f", run_id="r", step_id="s", message_id="m", attempt=1,
                          egress=EgressPolicy())  # fmt: skip
    try:
        theirs = executor.execute(StepInvocation("probe", "echo", {}, Message(data={}), context,
                                                 code="folder:tenant-b/probe/1"))  # fmt: skip
        assert not theirs.ok and not theirs.retryable and "belongs to another tenant" in (theirs.error or "")
        assert executor.execute(StepInvocation("probe", "echo", {}, Message(data={}), context,
                                               code="folder:global/probe/1")).ok  # fmt: skip
    finally:
        executor.close()


def test_a_tenant_cannot_run_an_image_it_did_not_add_even_if_it_is_on_the_engine(hub: HubRuntime) -> None:
    """Another tenant's private image, pulled with that tenant's login, is on the shared engine: a descriptor
    naming it (with a forged owner too) must not run it."""
    from app.errors import FlowInvalidError

    image = {"title": "Their CRM", "x-hub": {"image": "registry.example.com/other/crm@sha256:" + "a" * 64,
                                              "image_owner": hub.tenant_id.hex},
             "actions": {"sync": {"title": "Sync", "main": "./sync.js"}}}  # fmt: skip
    catalog.import_descriptor(hub.db, image, name="their-crm", tenant_id=hub.tenant_id)
    components = TenantCatalog(hub.db, hub.tenant_id)
    nodes = [{"id": "start", "component": "manual", "function": "start"},
             {"id": "step", "component": "their-crm", "function": "sync"}]  # fmt: skip
    flow = flows.create_flow(
        hub.db, hub.tenant_id, "theirs", {"nodes": nodes, "edges": [{"source": "start", "target": "step"}]}
    )
    flows.publish_flow(hub.db, hub.bus, components, hub.tenant_id, flow.id)
    with pytest.raises(FlowInvalidError, match="which this tenant has not added: add it by reference"):
        flows.activate_flow(hub.db, hub.bus, components, hub.tenant_id, flow.id, images=lambda _: None)


def test_the_python_code_step_runs_in_a_runner_of_the_workers_process_executor(
    hub: HubRuntime, tmp_path: Path
) -> None:
    from app.services import runs

    nodes = [{"id": "start", "component": "manual", "function": "start"},
             {"id": "code", "component": "code", "function": "run",
              "fields": {"code": "def process(data):\n    return {'doubled': data['n'] * 2}"}}]  # fmt: skip
    flow = flows.create_flow(hub.db, hub.tenant_id, "code", {"nodes": nodes,
                                                             "edges": [{"source": "start", "target": "code"}]})  # fmt: skip
    components = TenantCatalog(hub.db, hub.tenant_id)
    flows.publish_flow(hub.db, hub.bus, components, hub.tenant_id, flow.id)
    executor = ProcessExecutor(folder_resolver(tmp_path / "components"), SandboxPolicy())
    hub.workers.append(Worker(hub.bus, hub.components, WorkerConfig(name="w", block_ms=10, housekeeping_interval_s=0.02),
                              executors={"inline": InlineExecutor(), "process": executor}))  # fmt: skip
    try:
        run_id = runs.start_manual_run(hub.db, hub.bus, components, hub.tenant_id, flow.id, {"n": 21})
        hub.drive(lambda: hub.finished(run_id))
        [step] = [s for s in hub.steps(run_id) if s.step_id == "code"]
        assert (step.status, step.executor) == ("succeeded", "process"), step.error
        assert "'doubled': 42" in str(step.output)
    finally:
        executor.close()
