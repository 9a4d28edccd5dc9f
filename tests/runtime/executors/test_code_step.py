"""The Python code step: a person's code runs in a sandboxed runner (never in the worker), gets the message's
data, emits what it returns, fails with a message a person can act on, and reaches neither the hub's files
nor the network."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.components.builtin import builtin_registry
from runtime.components.shipped import shipped_folder
from runtime.executors.process import ProcessExecutor
from runtime.executors.sandbox import SandboxPolicy, sandbox_problem
from runtime.executors.warm import executor_name
from runtime.flows.compiler import compile_flow
from runtime.net.egress import EgressPolicy
from runtime.steps.context import StepContext
from runtime.steps.executor import StepInvocation
from runtime.steps.message import Message

ROOT = Path(__file__).resolve().parents[3]
sandboxed = pytest.mark.skipif(sandbox_problem() is not None, reason=f"no sandbox here: {sandbox_problem()}")


def step(code: str, data: object) -> StepInvocation:
    context = StepContext(tenant_id="t", flow_id="f", run_id="r", step_id="code", message_id="m", attempt=1,
                          egress=EgressPolicy())  # fmt: skip
    return StepInvocation("hub/code", "run", {"code": code}, Message(data=data), context, 20)


@pytest.fixture
def executor() -> Iterator[ProcessExecutor]:
    running = ProcessExecutor(lambda entry: shipped_folder(f"folder:{entry}"), SandboxPolicy())
    yield running
    running.close()


def test_the_code_step_is_a_built_in_that_never_runs_inline() -> None:
    spec = builtin_registry().get("code")
    assert spec is not None and spec.runtime == "python" and spec.code == "folder:hub/code"
    assert spec.functions["run"].handler is None and spec.functions["run"].required_fields == ("code",)
    graph = {"nodes": [{"id": "start", "component": "manual", "function": "start"},
                       {"id": "code", "component": "code", "function": "run", "fields": {"code": "x"}}],
             "edges": [{"source": "start", "target": "code"}]}  # fmt: skip
    plan = compile_flow(graph, builtin_registry())
    assert executor_name(plan.steps["code"]) == "process"


def test_what_process_returns_becomes_the_output(executor: ProcessExecutor) -> None:
    one = executor.execute(
        step("def process(data):\n    return {'total': sum(data['prices'])}", {"prices": [2, 3]})
    )
    assert one.ok, one.error
    assert [o.data for o in one.outputs] == [{"total": 5}]
    several = executor.execute(step("def process(data):\n    return [{'n': n} for n in data]", [1, 2]))
    assert [o.data for o in several.outputs] == [{"n": 1}, {"n": 2}]
    none = executor.execute(step("def process(data):\n    print('nothing to say')", {}))
    assert none.ok and none.outputs == []
    assert any("nothing to say" in text for _, text in none.logs), none.logs  # print() goes to the run's log
    with_context = executor.execute(
        step("def process(data, context):\n    return {'step': context.step_id}", {})
    )
    assert with_context.outputs[0].data == {"step": "code"}


def test_mistakes_are_named(executor: ProcessExecutor) -> None:
    broken = executor.execute(step("def process(data)\n    return data", {}))
    assert not broken.ok and not broken.retryable
    assert "the code does not parse: line 1" in (broken.error or "")
    nothing = executor.execute(step("x = 1", {}))
    assert "must define a function process(data)" in (nothing.error or "")
    raised = executor.execute(
        step("def process(data):\n    raise ValueError('no amount in ' + repr(data))", {})
    )
    assert not raised.ok and "no amount in {}" in (raised.error or "")


@sandboxed
def test_the_code_reaches_neither_the_hubs_files_nor_the_network(
    executor: ProcessExecutor, tmp_path: Path
) -> None:
    secret = tmp_path / "hub.key"
    secret.write_text("the hub's master key")
    secret.chmod(0o644)
    reader = "def process(data):\n    return {'text': open(data['path']).read()}"
    for path in (secret, ROOT / "pyproject.toml", Path("/etc/shadow")):
        read = executor.execute(step(reader, {"path": str(path)}))
        assert not read.ok and "No such file" in (read.error or ""), (path, read.error, read.outputs)
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        connect = ("import socket\n"
                   "def process(data):\n"
                   "    socket.create_connection(('127.0.0.1', data['port']), timeout=2)\n"
                   "    return {'connected': True}\n")  # fmt: skip
        refused = executor.execute(step(connect, {"port": listener.getsockname()[1]}))
        assert not refused.ok and (
            "unreachable" in (refused.error or "") or "refused" in (refused.error or "")
        )
    finally:
        listener.close()
