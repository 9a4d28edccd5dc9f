"""Step executor benchmark: what running a trivial step in a warm runner process costs over running it inline,
and how long a cold runner takes to its first answer.

    .venv/bin/python -m bench.executors [--messages 5000]

Both run the same component (tests/fixtures/components/probe, its `echo` step) in the same run: inline (its
handler called in this process) as the baseline, then the process executor with and without bubblewrap, then the
docker executor against podman's Docker-API service (started here on a private socket, with the tests' image:
busybox plus the host's Python mounted read-only) when podman is installed.
Targets (issue 7): warm overhead at most 2 ms a message; docker cold start to first message under 1.5 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from pathlib import Path

from runtime.executors.process import ProcessExecutor
from runtime.executors.sandbox import SandboxPolicy, sandbox_problem
from runtime.net.egress import EgressPolicy
from runtime.sdk.loader import load_component
from runtime.steps.context import StepContext
from runtime.steps.executor import InlineExecutor, StepInvocation
from runtime.steps.message import Message

PROBE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "components" / "probe"


def _invocation(n: int) -> StepInvocation:
    context = StepContext(tenant_id="bench", flow_id="f", run_id="r", step_id="s", message_id=f"m{n}", attempt=1,
                          egress=EgressPolicy())  # fmt: skip
    return StepInvocation("probe", "echo", {}, Message(data={"n": n, "text": "x" * 200}), context, 30)


def _per_message_ms(execute, messages: int) -> list[float]:
    times = []
    for n in range(messages):
        started = time.perf_counter()
        result = execute(_invocation(n))
        times.append((time.perf_counter() - started) * 1000)
        assert result.ok, result.error
    return times


def _process(policy: SandboxPolicy, messages: int) -> tuple[float, list[float]]:
    executor = ProcessExecutor(lambda _: PROBE, policy)
    try:
        started = time.perf_counter()
        first = executor.execute(_invocation(0))
        cold_ms = (time.perf_counter() - started) * 1000
        assert first.ok, first.error
        return cold_ms, _per_message_ms(lambda inv: executor.execute(inv), messages)
    finally:
        executor.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    args = parser.parse_args()
    handler = load_component(PROBE).handlers["echo"]
    inline = InlineExecutor()
    with (
        Path(os.devnull).open("w") as quiet,
        contextlib.redirect_stdout(quiet),
        contextlib.redirect_stderr(quiet),
    ):
        times = _per_message_ms(lambda inv: inline.execute(inv, handler), args.messages)
    baseline = statistics.median(times)
    print(f"inline: median {baseline:.3f} ms a message ({args.messages} messages)")
    rows = [("process, no sandbox", SandboxPolicy(use_bubblewrap=False))]
    if sandbox_problem() is None:
        rows.append(("process, bubblewrap", SandboxPolicy()))
    else:
        print(f"(no bubblewrap row: {sandbox_problem()})")
    for label, policy in rows:
        _report(label, *_process(policy, args.messages), baseline)
    _docker_row(args.messages, baseline)
    _backlog_rows()


def _backlog_rows(messages: int = 48, step_ms: int = 50) -> None:
    """A backlog of a slow step (it waits on a remote system: `step_ms` asleep), served side by side as the
    worker does: 1 instance is the baseline, then as many as the executor may start."""
    from concurrent.futures import ThreadPoolExecutor

    def backlog_s(instances: int) -> float:
        executor = ProcessExecutor(lambda _: PROBE, SandboxPolicy(), max_instances=instances)
        try:
            executor.warm_up("bench", "probe", instances=instances)
            invocations = [
                StepInvocation(
                    "probe", "slow", {}, Message(data={"seconds": step_ms / 1000}), _invocation(n).context, 30
                )
                for n in range(messages)
            ]
            started = time.perf_counter()
            with ThreadPoolExecutor(16) as threads:
                assert all(r.ok for r in threads.map(executor.execute, invocations))
            return time.perf_counter() - started
        finally:
            executor.close()

    one = backlog_s(1)
    print(f"backlog of {messages} x {step_ms} ms steps, 1 instance: {messages / one:.0f} messages/s")
    for instances in (2, 4, 8):
        took = backlog_s(instances)
        print(f"  {instances} instances: {messages / took:.0f} messages/s ({one / took:.1f}x)")


def _report(label: str, cold: float, times: list[float], baseline: float) -> None:
    median = statistics.median(times)
    p99 = sorted(times)[int(len(times) * 0.99)]
    print(
        f"{label}: cold start to first answer {cold:.0f} ms; warm median {median:.3f} ms "
        f"(overhead {median - baseline:.3f} ms over inline, target <= 2 ms), p99 {p99:.3f} ms"
    )


def _docker_row(messages: int, baseline: float) -> None:
    import tempfile

    import docker

    from runtime.executors.docker import DockerExecutor
    from tests.container_engine import TEST_IMAGE, PodmanService, engine_missing, runner_mounts

    if missing := engine_missing():
        print(f"(no docker row: {missing})")
        return
    with tempfile.TemporaryDirectory() as folder:
        service = PodmanService(Path(folder))
        try:
            service.build_test_image()
            command, volumes, environment = runner_mounts(PROBE)
            executor = DockerExecutor(client=docker.DockerClient(base_url=service.url), command=command,
                                      volumes=volumes, environment=environment, user="0")  # fmt: skip
            try:
                started = time.perf_counter()
                first = executor.execute(_docker_invocation(0, TEST_IMAGE))
                cold = (time.perf_counter() - started) * 1000
                assert first.ok, first.error
                times = _per_message_ms(lambda inv: executor.execute(_with_image(inv, TEST_IMAGE)), messages)
                _report("docker (podman), target cold < 1500 ms", cold, times, baseline)
            finally:
                executor.close()
        finally:
            service.stop()


def _with_image(invocation: StepInvocation, image: str) -> StepInvocation:
    import dataclasses

    return dataclasses.replace(invocation, code=image)


def _docker_invocation(n: int, image: str) -> StepInvocation:
    return _with_image(_invocation(n), image)


if __name__ == "__main__":
    main()
