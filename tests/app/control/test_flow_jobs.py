"""Activation and deactivation as control jobs on rq (a real Redis, real rq workers, real runner processes): the
flow is "starting" until a worker has started its runners, then active or in error with the reason; double,
concurrent and crossing requests end in the state asked for last with one set of runners; the runners of a
synchronous webhook stay warm while the flow is active."""

from __future__ import annotations

import shutil
import threading
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from rq import Queue

from app.control.context import ControlContext, NoControlContext, serving
from app.control.flow_jobs import converge_flow, enqueue_converge
from app.control.worker import ControlWorker
from app.errors import ValidationError
from app.services import catalog, flows, webhooks
from app.services.catalog import TenantCatalog
from app.services.component_code import folder_resolver
from app.storage.models import AuditEvent, Flow
from app.storage.scoping import tenant_session
from runtime.control import CONTROL_QUEUE
from runtime.executors.process import ProcessExecutor
from runtime.executors.sandbox import SandboxPolicy
from runtime.executors.warm import RunnerSpec, WarmSet
from runtime.router.routes import RouteRegistry
from runtime.steps.executor import InlineExecutor
from runtime.worker import Worker, WorkerConfig
from tests.app.hub_runtime import HubRuntime

PROBE = Path(__file__).resolve().parents[2] / "fixtures" / "components" / "probe"
ROUTES = webhooks.RouteDefaults(public_base_url="http://127.0.0.1:9")


@pytest.fixture
def components_dir(tmp_path: Path) -> Path:
    return tmp_path / "components"


@pytest.fixture
def executor(components_dir: Path):
    found = ProcessExecutor(folder_resolver(components_dir), SandboxPolicy(), idle_s=0.0)
    yield found
    found.close()


def control(hub: HubRuntime, executor: ProcessExecutor) -> ControlContext:
    return ControlContext(
        hub.db,
        hub.bus,
        lambda tenant_id: TenantCatalog(hub.db, tenant_id),
        {"inline": InlineExecutor(), "process": executor},
        ROUTES,
    )


def run_jobs(hub: HubRuntime, ctx: ControlContext) -> None:
    """What `hub worker` does with its control queue, until the queue is empty."""
    with serving(ctx):
        ControlWorker(hub.bus.redis).work(burst=True, with_scheduler=False)


def probe_flow(
    hub: HubRuntime, components_dir: Path, source: Path = PROBE, trigger: str = "manual"
) -> uuid.UUID:
    imported = catalog.import_folder(hub.db, source, tenant_id=hub.tenant_id, components_dir=components_dir)
    start = {"id": "start", "component": trigger, "function": "start" if trigger == "manual" else "receive"}
    nodes = [start, {"id": "echo", "component": imported.name, "function": "echo"}]
    flow = flows.create_flow(
        hub.db, hub.tenant_id, "probe", {"nodes": nodes, "edges": [{"source": "start", "target": "echo"}]}
    )
    flows.publish_flow(hub.db, hub.bus, TenantCatalog(hub.db, hub.tenant_id), hub.tenant_id, flow.id)
    return flow.id


def status(hub: HubRuntime, flow_id: uuid.UUID) -> tuple[str, str | None]:
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        flow = session.get(Flow, flow_id)
        return flow.status, flow.status_reason


def audited(hub: HubRuntime, flow_id: uuid.UUID) -> list[str]:
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        return list(
            session.scalars(
                sa.select(AuditEvent.action)
                .where(AuditEvent.target_id == str(flow_id), AuditEvent.action.like("flow.%activated"))
                .order_by(AuditEvent.id)
            )
        )


def test_activation_is_a_job_the_flow_starts_then_runs_with_its_runner_already_warm(
    hub: HubRuntime, components_dir: Path, executor: ProcessExecutor
) -> None:
    flow_id = probe_flow(hub, components_dir)
    flows.request_activation(hub.db, hub.tenant_id, flow_id, enqueue=enqueue_converge(hub.bus.redis))
    assert status(hub, flow_id) == ("starting", flows.WAITING)
    assert executor.running() == []  # nothing has started yet: a worker does it

    run_jobs(hub, control(hub, executor))
    assert status(hub, flow_id) == ("active", None)
    [(tenant, code)] = executor.running()
    assert tenant == hub.tenant_id.hex and code.endswith(f"/probe/{code.rsplit('/', 1)[-1]}")
    assert audited(hub, flow_id) == ["flow.activated"]

    flows.request_deactivation(
        hub.db, hub.bus, TenantCatalog(hub.db, hub.tenant_id), hub.tenant_id, flow_id,
        enqueue=enqueue_converge(hub.bus.redis),
    )  # fmt: skip
    assert status(hub, flow_id) == ("stopping", flows.STOPPING_REASON)
    run_jobs(hub, control(hub, executor))
    assert status(hub, flow_id) == ("inactive", None)
    assert audited(hub, flow_id) == ["flow.activated", "flow.deactivated"]


def test_a_component_that_does_not_load_puts_the_flow_in_error_with_what_it_said(
    hub: HubRuntime, components_dir: Path, executor: ProcessExecutor, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(PROBE, broken)
    (broken / "probe.py").write_text("raise RuntimeError('the API_URL setting is missing')\n")
    flow_id = probe_flow(hub, components_dir, broken)
    flows.request_activation(hub.db, hub.tenant_id, flow_id, enqueue=enqueue_converge(hub.bus.redis))
    run_jobs(hub, control(hub, executor))
    state, reason = status(hub, flow_id)
    assert state == "error"
    assert reason.startswith("Cannot run here: echo: 'Probe' does not start: the component cannot be loaded")
    assert "the API_URL setting is missing" in reason  # what the runner printed, so the user can act on it
    assert audited(hub, flow_id) == []


def test_a_flow_without_a_published_version_is_refused_at_once(hub: HubRuntime) -> None:
    flow = flows.create_flow(hub.db, hub.tenant_id, "draft only", {"nodes": [], "edges": []})
    with pytest.raises(ValidationError, match="has no published version yet; save it without problems"):
        flows.request_activation(hub.db, hub.tenant_id, flow.id, enqueue=enqueue_converge(hub.bus.redis))
    assert status(hub, flow.id)[0] == "inactive"
    assert Queue(CONTROL_QUEUE, connection=hub.bus.redis).count == 0


def test_double_and_concurrent_activation_start_one_set_of_runners(
    hub: HubRuntime, components_dir: Path, executor: ProcessExecutor
) -> None:
    flow_id = probe_flow(hub, components_dir)
    enqueue = enqueue_converge(hub.bus.redis)
    for _ in range(3):
        flows.request_activation(hub.db, hub.tenant_id, flow_id, enqueue=enqueue)
    assert Queue(CONTROL_QUEUE, connection=hub.bus.redis).count == 3  # the later jobs will find nothing to do
    run_jobs(hub, control(hub, executor))
    assert len(executor.running()) == 1 and audited(hub, flow_id) == ["flow.activated"]
    executor.close()
    # ... and two workers (each with its own runners) taking jobs of the same flow at the same moment.
    second = ProcessExecutor(executor.folder_of, SandboxPolicy(), idle_s=0.0)
    flows.set_status(hub.db, hub.tenant_id, flow_id, flows.FlowStatus.STARTING, flows.WAITING)
    try:
        results: list[str] = []

        def work(ctx: ControlContext) -> None:
            with serving(ctx):
                results.append(converge_flow(str(hub.tenant_id), str(flow_id)))

        threads = [threading.Thread(target=work, args=(control(hub, e),)) for e in (executor, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        run_jobs(hub, control(hub, executor))
        assert results == ["active", "active"]
        assert len(executor.running()) + len(second.running()) == 1
        assert audited(hub, flow_id) == ["flow.activated", "flow.activated"]  # once per activation asked
    finally:
        second.close()


def test_a_deactivation_asked_for_while_the_activation_runs_wins(
    hub: HubRuntime, components_dir: Path, executor: ProcessExecutor
) -> None:
    """The user clicks Deactivate while the worker is still starting the runners: the flow must end inactive
    with its URL closed, not active because the slower activation finished last."""
    flow_id = probe_flow(hub, components_dir)
    enqueue = enqueue_converge(hub.bus.redis)
    components = TenantCatalog(hub.db, hub.tenant_id)
    flows.request_activation(hub.db, hub.tenant_id, flow_id, enqueue=enqueue)
    real_warm_up = executor.warm_up

    def warm_up_while_the_user_deactivates(*args, **kwargs) -> None:
        real_warm_up(*args, **kwargs)
        flows.request_deactivation(hub.db, hub.bus, components, hub.tenant_id, flow_id, enqueue=enqueue)

    executor.warm_up = warm_up_while_the_user_deactivates  # type: ignore[method-assign]
    run_jobs(hub, control(hub, executor))
    assert status(hub, flow_id) == ("inactive", None)
    assert audited(hub, flow_id) == ["flow.deactivated"]


def test_activate_then_deactivate_before_any_worker_runs_ends_inactive(
    hub: HubRuntime, components_dir: Path, executor: ProcessExecutor
) -> None:
    flow_id = probe_flow(hub, components_dir)
    enqueue = enqueue_converge(hub.bus.redis)
    flows.request_activation(hub.db, hub.tenant_id, flow_id, enqueue=enqueue)
    flows.request_deactivation(
        hub.db, hub.bus, TenantCatalog(hub.db, hub.tenant_id), hub.tenant_id, flow_id, enqueue=enqueue
    )
    run_jobs(hub, control(hub, executor))
    assert status(hub, flow_id) == ("inactive", None)
    assert executor.running() == []  # the runners were never started


def test_the_runners_of_a_synchronous_webhook_stay_warm_while_the_flow_is_active(
    hub: HubRuntime, components_dir: Path, executor: ProcessExecutor
) -> None:
    flow_id = probe_flow(hub, components_dir, trigger="webhook")
    components = TenantCatalog(hub.db, hub.tenant_id)
    hook = webhooks.create_url(hub.db, hub.bus, components, hub.tenant_id, flow_id, "production", ROUTES)
    webhooks.update_settings(
        hub.db, hub.bus, components, None, hub.tenant_id, flow_id, {"mode": "sync"}, ROUTES
    )
    token = hook.url.rsplit("/", 1)[-1]
    enqueue = enqueue_converge(hub.bus.redis)
    flows.request_activation(hub.db, hub.tenant_id, flow_id, enqueue=enqueue)
    assert RouteRegistry(hub.bus).state(hub.tenant_id.hex, token) != "1"  # closed while starting
    run_jobs(hub, control(hub, executor))
    assert status(hub, flow_id) == ("active", None)
    [pinned] = WarmSet(hub.bus.redis).flows(hub.tenant_id.hex)[flow_id.hex]
    assert pinned.executor == "process" and pinned.functions == ("echo",)

    # Another worker, which has never run this flow, starts the pinned runner in its housekeeping, and neither
    # its idle stop (idle_s=0) nor the activating worker's takes them.
    other = ProcessExecutor(executor.folder_of, SandboxPolicy(), idle_s=0.0)
    first = Worker(hub.bus, hub.components, WorkerConfig(name="w1", warm_interval_s=0.0),
                   executors={"inline": InlineExecutor(), "process": executor})  # fmt: skip
    worker = Worker(hub.bus, hub.components, WorkerConfig(name="w2", warm_interval_s=0.0),
                    executors={"inline": InlineExecutor(), "process": other})  # fmt: skip
    try:
        for _ in range(2):
            first.housekeeping()
            worker.housekeeping()
        assert len(other.running()) == 1 and len(executor.running()) == 1

        flows.request_deactivation(hub.db, hub.bus, components, hub.tenant_id, flow_id, enqueue=enqueue,
                                   routes=ROUTES)  # fmt: skip
        run_jobs(hub, control(hub, executor))
        assert WarmSet(hub.bus.redis).flows(hub.tenant_id.hex) == {}
        first.housekeeping()
        worker.housekeeping()  # unpinned: the idle stop takes them now
        assert other.running() == [] and executor.running() == []
    finally:
        other.close()


def test_a_pinned_runner_that_cannot_start_is_tried_again_later_not_on_every_housekeeping(
    hub: HubRuntime, components_dir: Path
) -> None:
    calls: list[str] = []

    class Counting(ProcessExecutor):
        def warm_up(self, *args, **kwargs) -> None:
            calls.append(args[1])
            super().warm_up(*args, **kwargs)

    executor = Counting(folder_resolver(components_dir), SandboxPolicy())
    wanted = {hub.tenant_id.hex: {RunnerSpec("process", f"folder:{hub.tenant_id.hex}/gone/1")}}
    assert executor.keep_warm(wanted) == 0
    assert executor.keep_warm(wanted) == 0
    assert len(calls) == 1


def test_a_job_outside_a_worker_says_where_it_must_run(hub: HubRuntime) -> None:
    with pytest.raises(NoControlContext, match="control jobs run in `hub worker`"):
        converge_flow(str(hub.tenant_id), str(uuid.uuid4()))


def test_a_job_that_breaks_leaves_the_flow_in_error_with_the_reason_not_starting_for_ever(
    hub: HubRuntime, components_dir: Path, executor: ProcessExecutor
) -> None:
    flow_id = probe_flow(hub, components_dir)
    flows.request_activation(hub.db, hub.tenant_id, flow_id, enqueue=enqueue_converge(hub.bus.redis))

    def broken(*_args, **_kwargs) -> None:
        raise KeyError("boom")

    executor.warm_up = broken  # type: ignore[method-assign]
    run_jobs(hub, control(hub, executor))
    assert status(hub, flow_id) == ("error", "The worker failed: KeyError: 'boom'")


def test_a_job_for_a_flow_deleted_meanwhile_does_nothing(hub: HubRuntime, executor: ProcessExecutor) -> None:
    with serving(control(hub, executor)):
        assert converge_flow(str(hub.tenant_id), str(uuid.uuid4())) == "deleted"


def test_switching_an_active_flows_webhook_to_sync_and_back_pins_and_unpins_its_runners(
    hub: HubRuntime, components_dir: Path, executor: ProcessExecutor
) -> None:
    """A regression: pins were set only at activation, so a later switch of mode left them as they were."""
    flow_id = probe_flow(hub, components_dir, trigger="webhook")
    components = TenantCatalog(hub.db, hub.tenant_id)
    webhooks.create_url(hub.db, hub.bus, components, hub.tenant_id, flow_id, "production", ROUTES)
    enqueue = enqueue_converge(hub.bus.redis)
    flows.request_activation(hub.db, hub.tenant_id, flow_id, enqueue=enqueue)
    run_jobs(hub, control(hub, executor))
    warm = WarmSet(hub.bus.redis)
    assert (
        status(hub, flow_id)[0] == "active" and warm.flows(hub.tenant_id.hex) == {}
    )  # async: nothing pinned

    for mode, pinned in (("sync", True), ("async", False)):
        webhooks.update_settings(
            hub.db, hub.bus, components, None, hub.tenant_id, flow_id, {"mode": mode}, ROUTES
        )
        enqueue(
            hub.tenant_id, flow_id, None
        )  # what the flow page does after saving an active flow's settings
        run_jobs(hub, control(hub, executor))
        assert (flow_id.hex in warm.flows(hub.tenant_id.hex)) is pinned
    assert status(hub, flow_id) == ("active", None)
