"""The docker executor against a real Docker-API engine (podman's service): a warm container per tenant and image
with limits and labels and no credentials in its environment; a crash retried with a new container; a hang
stopped at the time limit; a memory hog killed and said so; a missing image a clear, final error; idle
containers removed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from runtime.executors.docker import ContainerLimits, DockerExecutor
from runtime.net.egress import EgressPolicy
from runtime.steps.context import StepContext
from runtime.steps.executor import StepInvocation
from runtime.steps.message import Message
from tests.container_engine import TEST_IMAGE, runner_mounts

PROBE = Path(__file__).resolve().parents[2] / "fixtures" / "components" / "probe"


TENANT = (
    f"t-{uuid.uuid4().hex[:8]}"  # the engine may hold other runs' containers: ours are told apart by tenant
)


def invocation(function: str, data: dict, *, image: str = TEST_IMAGE, timeout_s: float = 30,
               tenant: str = TENANT) -> StepInvocation:  # fmt: skip
    context = StepContext(tenant_id=tenant, flow_id="f", run_id="r", step_id="s", message_id="m", attempt=1,
                          credential={"key": "secret-in-the-message-only"}, egress=EgressPolicy())  # fmt: skip
    return StepInvocation("probe", function, {}, Message(data=data), context, timeout_s, code=image)


@pytest.fixture
def executor(container_engine) -> Iterator[DockerExecutor]:
    command, volumes, environment = runner_mounts(PROBE)
    running = DockerExecutor(
        client=docker.DockerClient(base_url=container_engine.url),
        limits=ContainerLimits(memory_mb=256, cpus=0.5, pids=64),
        command=command,
        volumes=volumes,
        environment=environment,
        idle_s=60,
        user="0",  # the host's Python, mounted into the test image, lives under /root (mode 700)
    )
    yield running
    running.close()


def test_a_warm_container_runs_the_steps_with_limits_labels_and_no_credentials(
    executor: DockerExecutor,
) -> None:
    first = executor.execute(invocation("echo", {"n": 1}))
    second = executor.execute(invocation("echo", {"n": 2}))
    assert first.ok and second.ok, (first.error, second.error)
    assert first.executor == "docker" and first.outputs[0].data["data"] == {"n": 1}
    assert first.instance and len(first.instance) == 12  # the container's short id, for the run history
    assert first.outputs[0].data["credential"] == {"key": "secret-in-the-message-only"}  # with the message
    assert first.outputs[0].data["pid"] == second.outputs[0].data["pid"]  # the same warm container
    assert any("echo from" in text for _, text in first.logs)  # its stderr is the step's log
    [container] = executor.containers(TENANT)
    container.reload()
    config, host = container.attrs["Config"], container.attrs["HostConfig"]
    assert host["Memory"] == 256 * 1024 * 1024 and host["NanoCpus"] == 500_000_000 and host["PidsLimit"] == 64
    assert config["Labels"]["hub.tenant"] == TENANT and config["Labels"]["hub.component"] == TEST_IMAGE
    assert not any("secret" in item for item in config.get("Env") or [])
    assert host["NetworkMode"] in ("none", "")  # the probe does not declare it needs the network
    executor.execute(invocation("echo", {}, tenant=TENANT + "-b"))
    assert (
        len(executor.containers(TENANT + "-b")) == 1 and len(executor.containers(TENANT)) == 1
    )  # per tenant


def test_a_crashed_container_fails_the_step_retryably_and_a_new_one_takes_over(
    executor: DockerExecutor,
) -> None:
    before = executor.execute(invocation("echo", {})).outputs[0].data["pid"]
    crashed = executor.execute(invocation("crash", {}))
    assert not crashed.ok and crashed.retryable and "exited with code 3" in (crashed.error or "")
    assert ("error", "about to crash") in crashed.logs
    after = executor.execute(invocation("echo", {}))
    assert after.ok and after.outputs[0].data["pid"] != before


def test_a_hung_step_is_stopped_at_its_time_limit(executor: DockerExecutor) -> None:
    hung = executor.execute(invocation("hang", {}, timeout_s=2))
    assert not hung.ok and hung.retryable and "no answer within 2 s" in (hung.error or "")
    assert executor.execute(invocation("echo", {})).ok


def test_a_memory_hog_is_killed_and_the_step_says_why(executor: DockerExecutor) -> None:
    hog = executor.execute(invocation("hog", {}))  # 4 GB wanted, 256 MB allowed
    assert not hog.ok and hog.retryable
    assert "out of memory" in (hog.error or "") or "MemoryError" in (hog.error or ""), hog.error


def test_a_missing_image_is_a_clear_final_error(executor: DockerExecutor) -> None:
    missing = executor.execute(invocation("echo", {}, image="localhost/no-such-image:9"))
    assert not missing.ok and not missing.retryable
    assert "'localhost/no-such-image:9' is not on this container engine" in (missing.error or "")


def test_idle_containers_are_removed(executor: DockerExecutor) -> None:
    import time

    executor.execute(invocation("echo", {}))
    assert executor.stop_idle(time.monotonic() + 10) == 0
    assert executor.stop_idle(time.monotonic() + executor.idle_s + 1) == 1
    assert executor.containers(TENANT) == []


def test_a_flow_step_runs_in_a_container_and_a_crash_is_retried_through_the_normal_path(
    executor: DockerExecutor, redis
) -> None:

    from runtime.bus.streams import StreamsBus
    from runtime.steps.executor import InlineExecutor
    from runtime.worker import Worker, WorkerConfig
    from tests.runtime.conftest import START, Harness, node

    registry = probe_as_image()
    harness = Harness(StreamsBus(redis), registry)
    harness.workers.append(
        Worker(
            harness.bus,
            registry,
            WorkerConfig(name="w", block_ms=20, housekeeping_interval_s=0.02),
            executors={"inline": InlineExecutor(), "docker": executor},
        )
    )
    version = harness.publish(
        [START, node("crash", "probe", "crash", settings={"retry": {"max_attempts": 2, "base_delay_s": 0}})],
        [{"source": "start", "target": "crash"}],
    )
    run = harness.run_to_end(version, {"only_first_attempt": True})
    assert run["status"] == "succeeded"
    events = [e for e in harness.events() if e.get("step") == "crash"]
    assert [e["status"] for e in events] == ["retrying", "succeeded"]
    assert events[0]["executor"] == "docker" and "exited with code 3" in events[0]["error"]


def test_the_reconciler_removes_orphans_of_dead_workers_only(executor: DockerExecutor) -> None:
    import socket

    assert executor.execute(invocation("echo", {})).ok  # a live container of this (running) worker
    orphan = executor.client.containers.run(
        TEST_IMAGE, ["/bin/sleep", "600"], detach=True, network_mode="none",
        labels={"hub.managed": "1", "hub.tenant": TENANT, "hub.host": socket.gethostname(), "hub.pid": "999999999"},
    )  # fmt: skip
    elsewhere = executor.client.containers.run(
        TEST_IMAGE, ["/bin/sleep", "600"], detach=True, network_mode="none",
        labels={"hub.managed": "1", "hub.tenant": TENANT, "hub.host": "another-host", "hub.pid": "999999999"},
    )  # fmt: skip
    try:
        assert executor.reconcile() >= 1
        remaining = {c.id for c in executor.containers(TENANT)}
        assert orphan.id not in remaining and elsewhere.id in remaining
        assert executor.execute(invocation("echo", {})).ok  # its own warm container was left alone
        assert (
            len([c for c in executor.containers(TENANT) if c.labels.get("hub.host") != "another-host"]) == 1
        )
    finally:
        elsewhere.remove(force=True)


def test_a_backlog_adds_instances_side_by_side_and_they_go_when_it_drains(container_engine, redis) -> None:
    """Six slow messages of one step in one batch: the worker runs them side by side, the executor starts
    instances up to its limit (3) and every one serves; the extra instances stop after scale_down_s, the
    first after idle_s."""
    import time

    from runtime.bus.streams import StreamsBus
    from runtime.steps.executor import InlineExecutor
    from runtime.worker import Worker, WorkerConfig
    from tests.runtime.conftest import START, Harness, node

    command, volumes, environment = runner_mounts(PROBE)
    scaling = DockerExecutor(client=docker.DockerClient(base_url=container_engine.url), command=command,
                             volumes=volumes, environment=environment, user="0", max_instances=3,
                             scale_down_s=30, idle_s=300)  # fmt: skip
    registry = probe_as_image()
    harness = Harness(StreamsBus(redis), registry)
    harness.workers.append(Worker(harness.bus, registry, WorkerConfig(name="w", block_ms=20, housekeeping_interval_s=60),
                                  executors={"inline": InlineExecutor(), "docker": scaling}))  # fmt: skip
    try:
        version = harness.publish(
            [START, node("slow", "probe", "slow")], [{"source": "start", "target": "slow"}]
        )
        runs = [harness.start(version, {"n": n, "seconds": 0.6}) for n in range(6)]
        harness.drain(lambda: all(r in harness.finished() for r in runs), timeout=60)
        outputs = [e for e in harness.events() if e["t"] == "step.finished" and e.get("step") == "slow"]
        assert sorted(e["out"][0]["n"] for e in outputs) == list(range(6))
        assert len({e["out"][0]["pid"] for e in outputs}) == 3  # three instances served the backlog
        assert len(scaling.containers(harness.tenant)) == 3

        now = time.monotonic()
        assert scaling.stop_idle(now + 5) == 0  # still wanted a moment after
        assert scaling.stop_idle(now + 31) == 2  # drained: the extra instances go
        assert len(scaling.containers(harness.tenant)) == 1
        assert scaling.stop_idle(now + 301) == 1  # and the last after idle_s (scale to zero)
    finally:
        scaling.close()


def test_a_container_that_stops_reading_its_input_is_stopped_at_the_time_limit(container_engine) -> None:
    """A regression: the request was written with a blocking sendall, outside the time limit."""
    import time

    deaf = DockerExecutor(client=docker.DockerClient(base_url=container_engine.url), command=["/bin/sleep", "600"],
                          user="0")  # fmt: skip
    try:
        started = time.monotonic()
        result = deaf.execute(invocation("echo", {"big": "x" * (32 << 20)}, timeout_s=3))
        assert not result.ok and result.retryable
        assert "did not take its request within 3 s" in (result.error or ""), result.error
        assert time.monotonic() - started < 20
    finally:
        deaf.close()


def test_a_pinned_container_that_died_while_idle_is_replaced_before_a_request_needs_it(
    executor: DockerExecutor,
) -> None:
    from runtime.executors.warm import RunnerSpec

    pins = {TENANT: {RunnerSpec("docker", TEST_IMAGE)}}
    assert executor.keep_warm(pins) == 1
    [first] = executor.containers(TENANT)
    first.kill()  # as an OOM kill of an idle container would
    assert executor.keep_warm(pins) == 1  # found dead and started again
    assert [c.id for c in executor.containers(TENANT) if c.status == "running"] != [first.id]
    assert executor.execute(invocation("echo", {})).ok


def probe_as_image():
    """The builtins plus the probe as a published version pins it: an image, no code in the worker."""
    import dataclasses

    from runtime.components.builtin import builtin_registry
    from runtime.sdk.loader import load_component

    spec = load_component(PROBE).spec
    pinned = dataclasses.replace(
        spec, runtime="docker", code=TEST_IMAGE,
        functions={k: dataclasses.replace(f, handler=None) for k, f in spec.functions.items()},
    )  # fmt: skip
    return builtin_registry().with_components(pinned)
