"""The process executor with a real runner process (and bubblewrap where it works): warm between messages,
killed and started again after a crash or a hang, memory-limited, sandboxed, stopped when idle."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.components.options import OptionsError
from runtime.executors.process import ProcessExecutor
from runtime.executors.sandbox import SandboxPolicy, sandbox_problem
from runtime.net.egress import EgressPolicy
from runtime.steps.context import StepContext
from runtime.steps.executor import StepInvocation
from runtime.steps.message import Message

PROBE = Path(__file__).resolve().parents[2] / "fixtures" / "components" / "probe"


def invocation(function: str, data: dict, *, tenant: str = "t1", timeout_s: float = 20, attempt: int = 1,
               credential: dict | None = None) -> StepInvocation:  # fmt: skip
    context = StepContext(tenant_id=tenant, flow_id="f", run_id="r", step_id="s", message_id="m", attempt=attempt,
                          credential=credential, egress=EgressPolicy())  # fmt: skip
    return StepInvocation("probe", function, {}, Message(data=data), context, timeout_s)


@pytest.fixture
def executor() -> Iterator[ProcessExecutor]:
    running = ProcessExecutor(lambda name: PROBE if name == "probe" else None, SandboxPolicy(memory_mb=768))
    yield running
    running.close()


def test_a_warm_runner_serves_messages_and_keeps_its_output_off_the_protocol(
    executor: ProcessExecutor,
) -> None:
    first = executor.execute(invocation("echo", {"n": 1}, credential={"key": "k-1"}))
    second = executor.execute(invocation("echo", {"n": 2}))
    assert first.ok and second.ok, (first.error, second.error)
    assert first.outputs[0].data["data"] == {"n": 1} and first.outputs[0].data["credential"] == {"key": "k-1"}
    assert first.outputs[0].data["pid"] == second.outputs[0].data["pid"]  # the same warm process
    assert any("echo from" in text for _, text in first.logs)  # what it printed is the step's log
    other = executor.execute(invocation("echo", {"n": 3}, tenant="t2"))
    assert other.outputs[0].data["pid"] != first.outputs[0].data["pid"]  # one runner per tenant and component


def test_a_crashed_runner_fails_the_step_retryably_and_is_started_again(executor: ProcessExecutor) -> None:
    before = executor.execute(invocation("echo", {})).outputs[0].data["pid"]
    crashed = executor.execute(invocation("crash", {}))
    assert not crashed.ok and crashed.retryable
    assert "exited with code 3" in (crashed.error or "")
    assert ("error", "about to crash") in crashed.logs
    after = executor.execute(invocation("echo", {}))
    assert after.ok and after.outputs[0].data["pid"] != before


def test_a_hung_step_is_stopped_at_its_time_limit(executor: ProcessExecutor) -> None:
    started = time.monotonic()
    hung = executor.execute(invocation("hang", {}, timeout_s=1.0))
    assert time.monotonic() - started < 5
    assert not hung.ok and hung.retryable and "no answer within 1 s" in (hung.error or "")
    assert executor.execute(invocation("echo", {})).ok


def test_a_memory_hog_fails_instead_of_taking_the_machine(executor: ProcessExecutor) -> None:
    hog = executor.execute(invocation("hog", {}))  # wants 4 GB, the limit is 768 MB
    assert not hog.ok and "MemoryError" in (hog.error or "")
    assert executor.execute(invocation("echo", {})).ok


def test_unknown_components_fail_for_good(executor: ProcessExecutor) -> None:
    missing = executor.execute(
        StepInvocation("nope", "x", {}, Message(data={}), invocation("echo", {}).context)
    )
    assert (
        not missing.ok and not missing.retryable and "not installed on this worker" in (missing.error or "")
    )


def test_idle_runners_are_stopped(executor: ProcessExecutor) -> None:
    executor.execute(invocation("echo", {}))
    assert executor.stop_idle(time.monotonic() + 10) == 0
    assert executor.stop_idle(time.monotonic() + executor.idle_s + 1) == 1
    assert executor.execute(invocation("echo", {})).ok  # and started again on the next message


sandboxed = pytest.mark.skipif(sandbox_problem() is not None, reason=f"no sandbox here: {sandbox_problem()}")


@sandboxed
def test_the_sandbox_hides_the_systems_secrets_and_the_hubs_data(tmp_path: Path) -> None:
    hub_data = tmp_path / "var"
    hub_data.mkdir()
    (hub_data / "secret.key").write_text("the hub's master key")
    (hub_data / "secret.key").chmod(0o644)  # even a file others may read
    executor = ProcessExecutor(lambda _: PROBE, SandboxPolicy())
    try:
        shadow = executor.execute(invocation("read_file", {"path": "/etc/shadow"}))
        assert not shadow.ok and "No such file" in (shadow.error or "")  # not in the runner's world at all
        project = executor.execute(
            invocation("read_file", {"path": str(PROBE.parents[3] / "pyproject.toml")})
        )
        assert not project.ok and "No such file" in (project.error or "")  # nor the hub's own folder
        key = executor.execute(invocation("read_file", {"path": str(hub_data / "secret.key")}))
        assert not key.ok and "No such file" in (key.error or "")
        assert executor.execute(invocation("echo", {})).outputs[0].data["uid"] == 65534
    finally:
        executor.close()


@sandboxed
def test_no_network_unless_the_component_needs_it(tmp_path: Path) -> None:
    import json
    import shutil

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    declared = tmp_path / "probe"
    shutil.copytree(PROBE, declared)
    descriptor = json.loads((declared / "component.json").read_text())
    descriptor["x-hub"]["network"] = True  # "I call other systems"
    (declared / "component.json").write_text(json.dumps(descriptor))
    tmp_path.chmod(0o755)
    closed = ProcessExecutor(lambda _: PROBE, SandboxPolicy())
    open_ = ProcessExecutor(lambda _: declared, SandboxPolicy())
    try:
        refused = closed.execute(invocation("connect", {"port": port}))
        assert not refused.ok and (
            "unreachable" in (refused.error or "") or "refused" in (refused.error or "")
        )
        allowed = open_.execute(invocation("connect", {"port": port}))
        assert allowed.ok, allowed.error
    finally:
        closed.close()
        open_.close()
        listener.close()


def test_a_flow_step_runs_in_a_runner_and_a_crash_is_retried_through_the_normal_path(redis) -> None:
    from runtime.bus.streams import StreamsBus
    from runtime.components.builtin import builtin_registry
    from runtime.sdk.loader import load_component
    from runtime.steps.executor import InlineExecutor
    from runtime.worker import Worker, WorkerConfig
    from tests.runtime.conftest import START, Harness, node

    spec = load_component(PROBE).spec
    # The worker knows the component by its descriptor only; its code runs in the runner, not here.
    registry = builtin_registry().with_components(
        type(spec)(spec.name, spec.version, spec.title, {
            k: type(f)(**{**f.__dict__, "handler": None}) for k, f in spec.functions.items()
        }, runtime="python", descriptor=spec.descriptor)
    )  # fmt: skip
    harness = Harness(StreamsBus(redis), registry)
    executor = ProcessExecutor(lambda name: PROBE if name == "probe" else None, SandboxPolicy())
    worker = Worker(harness.bus, registry, WorkerConfig(name="w", block_ms=20, housekeeping_interval_s=0.02),
                    executors={"inline": InlineExecutor(), "process": executor})  # fmt: skip
    harness.workers.append(worker)
    try:
        version = harness.publish(
            [
                START,
                node("crash", "probe", "crash", settings={"retry": {"max_attempts": 2, "base_delay_s": 0}}),
            ],
            [{"source": "start", "target": "crash"}],
        )
        run = harness.run_to_end(version, {"only_first_attempt": True})
        assert run["status"] == "succeeded"
        events = [e for e in harness.events() if e.get("step") == "crash"]
        assert [e["status"] for e in events] == ["retrying", "succeeded"]
        assert events[0]["executor"] == "process" and "exited with code 3" in events[0]["error"]
        assert events[1]["out"] == [{"survived": True, "pid": events[1]["out"][0]["pid"], "attempt": 2}]
    finally:
        executor.close()


def test_a_runner_that_writes_garbage_on_the_protocol_is_replaced_and_the_worker_lives(
    executor: ProcessExecutor,
) -> None:
    with executor.lease("t1", "probe") as runner:
        pass
    assert executor.execute(invocation("echo", {})).ok
    # As if something in the runner wrote to the protocol's descriptor: it is stopped, the step retried.
    runner._buffer += b"garbage that is not an answer\n"
    broken = executor.execute(invocation("echo", {}))
    assert not broken.ok and broken.retryable and "not its answer" in (broken.error or "")
    assert executor.execute(invocation("echo", {})).ok


def test_a_component_that_cannot_be_loaded_fails_for_good(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "component.json").write_text('{"title": "Broken", "x-hub": {"entry_point": "missing_module"},'
                                           ' "actions": {"go": {"main": "x"}}}')  # fmt: skip
    tmp_path.chmod(0o755)
    executor = ProcessExecutor(lambda _: broken, SandboxPolicy())
    try:
        result = executor.execute(invocation("go", {}))
        assert not result.ok and not result.retryable and "cannot be loaded" in (result.error or "")
    finally:
        executor.close()


def test_a_slow_cold_start_does_not_hold_up_the_steps_of_other_components() -> None:
    """A cold container takes most of a second: meanwhile, the warm runners of other components must serve."""
    import threading

    slow_started, release = threading.Event(), threading.Event()

    class SlowFirstStart(ProcessExecutor):
        def start(self, tenant: str, component: str, network: bool = False):
            if tenant == "slow":
                slow_started.set()
                release.wait(20)
            return super().start(tenant, component, network)

    executor = SlowFirstStart(lambda _: PROBE, SandboxPolicy())
    try:

        def start_slow() -> None:
            with executor.lease("slow", "probe"):
                pass

        slow = threading.Thread(target=start_slow)
        slow.start()
        assert slow_started.wait(5)
        results = []
        fast = threading.Thread(
            target=lambda: results.append(executor.execute(invocation("echo", {}, tenant="fast")))
        )
        fast.start()
        fast.join(8)  # while "slow" is still starting
        assert results and results[0].ok, results and results[0].error
        release.set()
        slow.join(10)
        assert executor.running() == [("fast", "probe"), ("slow", "probe")]
    finally:
        release.set()
        executor.close()


def test_a_component_that_loads_is_ready_and_a_missing_function_is_named() -> None:
    from runtime.executors.process import RunnerNotReady

    executor = ProcessExecutor(lambda _: PROBE, SandboxPolicy())
    try:
        executor.warm_up("t", "probe", functions=("echo", "crash"))
        with pytest.raises(RunnerNotReady, match=r"does not load: no function nope \(it has: connect, crash"):
            executor.warm_up("t", "probe", functions=("echo", "nope"))
    finally:
        executor.close()


def test_a_step_asking_for_instances_gets_them_at_once_and_they_stay_while_pinned() -> None:
    import time

    from runtime.executors.warm import RunnerSpec

    executor = ProcessExecutor(lambda _: PROBE, SandboxPolicy(), max_instances=1, scale_down_s=1, idle_s=10)
    try:
        executor.warm_up("t", "probe", functions=("echo",), instances=3)  # above max_instances: asked for
        assert executor.running() == [("t", "probe")] * 3
        executor.keep_warm({"t": {RunnerSpec("process", "probe", instances=3)}})
        assert executor.stop_idle(time.monotonic() + 100) == 0  # pinned: all three stay
        executor.keep_warm({})
        assert executor.stop_idle(time.monotonic() + 5) == 2  # unpinned: the extra ones go first
        assert executor.stop_idle(time.monotonic() + 11) == 1
    finally:
        executor.close()


def _at_once(executor: ProcessExecutor, count: int, seconds: float) -> list:
    """`count` slow steps called side by side, as a worker's threads do; their results."""
    import threading

    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(executor.execute(invocation("slow", {"seconds": seconds})))
        )
        for _ in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_instances_stay_within_the_tenants_limit() -> None:
    executor = ProcessExecutor(lambda _: PROBE, SandboxPolicy(), max_instances=8, max_tenant_runners=2)
    try:
        results = _at_once(executor, 4, 0.5)
        assert len(results) == 4 and all(r.ok for r in results), [r.error for r in results]
        assert len({r.outputs[0].data["pid"] for r in results}) == 2 and len(executor.running()) == 2
    finally:
        executor.close()


def test_a_tenants_own_quota_of_runners_replaces_the_workers_default() -> None:
    executor = ProcessExecutor(lambda _: PROBE, SandboxPolicy(), max_instances=8, max_tenant_runners=8)
    executor.set_tenant_limits({"t1": 1})  # what the worker reads from the tenant's quota (max_warm_runners)
    try:
        results = _at_once(executor, 3, 0.3)
        assert len(results) == 3 and all(r.ok for r in results), [r.error for r in results]
        assert len({r.outputs[0].data["pid"] for r in results}) == 1  # one runner served all three in turn
    finally:
        executor.close()


def test_a_tenants_memory_quota_bounds_its_runners_in_a_worker() -> None:
    executor = ProcessExecutor(lambda _: PROBE, SandboxPolicy(memory_mb=256), max_tenant_runners=8)
    executor.set_tenant_limits(
        {}, {"t1": 600, "t2": 100}
    )  # MB of runners: 2 fit; less than one still gets one
    assert executor._tenant_limits == {"t1": 2, "t2": 1}
    executor.set_tenant_limits({"t1": 1}, {"t1": 6000})  # the stricter of the two quotas
    assert executor._tenant_limits == {"t1": 1}
    executor.close()


def test_asking_for_more_instances_than_the_tenant_may_have_starts_what_it_may_and_does_not_hang() -> None:
    """A regression: warm_up held its first instances while it waited for one the tenant's limit forbade."""
    import threading

    executor = ProcessExecutor(lambda _: PROBE, SandboxPolicy(), max_tenant_runners=2)
    try:
        done = threading.Event()
        thread = threading.Thread(target=lambda: (executor.warm_up("t", "probe", instances=4), done.set()))
        thread.start()
        assert done.wait(20), "warm_up waited for an instance the tenant's limit does not allow"
        assert executor.running() == [("t", "probe")] * 2
    finally:
        executor.close()


def test_without_prlimit_a_runner_does_not_start_unlimited(monkeypatch: pytest.MonkeyPatch) -> None:
    """The limits are set by prlimit around the command (never code run between fork and exec: the worker
    starts runners from several threads); without it the step fails, retryably, saying what is missing."""
    import shutil as shutil_module

    from runtime.executors import sandbox

    real_which = shutil_module.which
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None if name == "prlimit" else real_which(name))
    executor = ProcessExecutor(lambda _: PROBE, SandboxPolicy())
    try:
        result = executor.execute(invocation("echo", {}))
        assert not result.ok and result.retryable
        assert result.error == (
            "the component's runner cannot start: prlimit (util-linux) is not installed: runners cannot be "
            "given their memory limit"
        )
    finally:
        executor.close()


class _FakeRunner:
    """Stands in for a runner process where what is tested is the executor's bookkeeping."""

    def __init__(self, answer: dict | None = None) -> None:
        self.answer, self.last_used, self.stopped = (
            answer or {"ok": True, "error": None},
            time.monotonic(),
            False,
        )

    def call(self, request: dict, timeout_s: float) -> dict:
        return {"id": 1, **self.answer}

    def alive(self) -> bool:
        return not self.stopped

    def check(self) -> bool:
        return self.alive()

    def take_stderr(self, wait_s: float = 0.0) -> list[str]:
        return []

    def stop(self) -> None:
        self.stopped = True


def test_a_pinned_runner_that_breaks_oddly_is_logged_and_the_worker_goes_on() -> None:
    """A regression: only RunnerNotReady was caught; anything else escaped housekeeping and stopped the worker."""
    from runtime.executors.warm import RunnerSpec

    class Broken(ProcessExecutor):
        def start(self, tenant: str, component: str, network: bool = False):
            raise ValueError("a malformed pin")

    executor = Broken(lambda _: PROBE, SandboxPolicy())
    assert executor.keep_warm({"t": {RunnerSpec("process", "probe")}}) == 0


def test_two_flows_pinning_one_component_get_what_both_need() -> None:
    from runtime.executors.warm import RunnerSpec

    asked: list[tuple] = []

    class Recording(ProcessExecutor):
        def warm_up(self, tenant, component, network=False, functions=(), timeout_s=60.0, instances=1):
            asked.append((component, network, functions, instances))

    executor = Recording(lambda _: PROBE, SandboxPolicy())
    executor.keep_warm({"t": {RunnerSpec("process", "probe", False, ("echo",), 2),
                              RunnerSpec("process", "probe", True, ("crash",), 1)}})  # fmt: skip
    assert asked == [("probe", True, ("crash", "echo"), 2)]


def test_a_runner_from_before_the_ready_question_is_taken_as_ready() -> None:
    """Images built on an older parent image answer the ready request as an unknown function, without "ok"."""

    class OldImage(ProcessExecutor):
        def start(self, tenant: str, component: str, network: bool = False):
            return _FakeRunner({"error": "no function '' (it has: echo)", "outputs": []})

    OldImage(lambda _: PROBE, SandboxPolicy()).warm_up("t", "probe", functions=("echo",))


def test_a_step_that_breaks_outside_its_executor_does_not_undo_the_others_run_side_by_side(redis) -> None:
    """A regression: one failed future threw away the batch's other results (their side effects would repeat)."""
    import dataclasses

    from runtime.bus.streams import StreamsBus
    from runtime.components.builtin import builtin_registry
    from runtime.sdk.loader import load_component
    from runtime.steps.executor import InlineExecutor, StepResult
    from runtime.worker import Worker, WorkerConfig
    from tests.runtime.conftest import START, Harness, node

    ran: list[int] = []

    class Exploding:
        name, concurrent = "process", True

        def execute(self, invocation, handler=None):
            if invocation.message.data["n"] == 1:
                raise RuntimeError("the executor itself broke")
            ran.append(invocation.message.data["n"])
            return StepResult(outputs=[invocation.message], executor="process")

    spec = load_component(PROBE).spec
    pinned = dataclasses.replace(spec, runtime="python", code="probe",
                                 functions={k: dataclasses.replace(f, handler=None) for k, f in spec.functions.items()})  # fmt: skip
    registry = builtin_registry().with_components(pinned)
    harness = Harness(StreamsBus(redis), registry)
    harness.workers.append(Worker(harness.bus, registry, WorkerConfig(name="w", block_ms=20, housekeeping_interval_s=60),
                                  executors={"inline": InlineExecutor(), "process": Exploding()}))  # fmt: skip
    version = harness.publish(
        [START, node("echo", "probe", "echo", settings={"retry": {"max_attempts": 1}})],
        [{"source": "start", "target": "echo"}],
    )
    runs = [harness.start(version, {"n": n}) for n in range(3)]
    harness.drain(lambda: all(r in harness.finished() for r in runs))
    statuses = {harness.finished()[r]["status"] for r in runs[::2]}
    assert statuses == {"succeeded"} and sorted(ran) == [0, 2]  # each ran once
    [failed] = [e for e in harness.events() if e.get("step") == "echo" and e.get("error")]
    assert "the step could not be run: RuntimeError: the executor itself broke" in failed["error"]


def test_the_end_mark_is_found_after_output_without_a_line_end() -> None:
    from runtime.executors.process import LineProtocol

    runner = LineProtocol()
    runner._add_stderr(b"no line end here")
    runner._add_stderr(b"\x1e\n")
    runner._add_stderr(b"next\n\x1e\n")
    assert runner.stderr_ends == 2
    assert runner._taken_stderr() == ["no line end here", "next"]


def test_a_dynamic_selects_choices_come_from_the_components_model_function(executor: ProcessExecutor) -> None:
    good = {"token": "good"}
    assert executor.options("t", "probe", "echo", "list_colours", {}, good) == {"r": "Red", "g": "Green"}
    assert executor.options("t", "probe", "echo", "list_colours", {"palette": "mono"}, good) == {
        "black": "black",
        "white": "white",
    }
    with pytest.raises(OptionsError, match="the token was refused"):
        executor.options("t", "probe", "echo", "list_colours", {}, {"token": "bad"})
    with pytest.raises(OptionsError, match="returned int, not an object or a list"):
        executor.options("t", "probe", "echo", "broken_model", {}, good)
    with pytest.raises(OptionsError, match="no model function 'missing'"):
        executor.options("t", "probe", "echo", "missing", {}, good)
    with pytest.raises(OptionsError, match="no model function '_private'"):
        executor.options("t", "probe", "echo", "_private", {}, good)
