"""Step executor benchmark: what running a trivial step in a warm runner process costs over running it inline,
and how long a cold runner takes to its first answer.

    .venv/bin/python -m bench.executors [--messages 5000]

Both run the same component (tests/fixtures/components/probe, its `echo` step) in the same run: inline (its
handler called in this process) as the baseline, then the process executor with and without bubblewrap.
Target (issue 7): warm overhead at most 2 ms a message. The docker executor is not built yet.
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
        cold, times = _process(policy, args.messages)
        median = statistics.median(times)
        p99 = sorted(times)[int(len(times) * 0.99)]
        print(
            f"{label}: cold start to first answer {cold:.0f} ms; warm median {median:.3f} ms "
            f"(overhead {median - baseline:.3f} ms over inline, target <= 2 ms), p99 {p99:.3f} ms"
        )


if __name__ == "__main__":
    main()
