"""A Node.js component written to the elastic.io sailor contract runs unmodified in a runner process: promise and
callback styles, snapshots, errors and rebounds, its console kept off the protocol, verifyCredentials."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.components.options import OptionsError
from runtime.executors.process import ProcessExecutor
from runtime.executors.sandbox import SandboxPolicy
from runtime.net.egress import EgressPolicy
from runtime.steps.context import StepContext
from runtime.steps.executor import StepInvocation
from runtime.steps.message import Message

DEMO = Path(__file__).resolve().parents[2] / "fixtures" / "components" / "sailor-demo"
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")


def invocation(function: str, data: dict, snapshot: dict | None = None) -> StepInvocation:
    context = StepContext(tenant_id="t", flow_id="f", run_id="r", step_id="s", message_id="m", attempt=1,
                          snapshot=snapshot or {}, credential={"kind": "fields", "apiKey": "good-key"},
                          egress=EgressPolicy())  # fmt: skip
    return StepInvocation("sailor-demo", function, {}, Message(data=data), context, 20)


@pytest.fixture
def executor() -> Iterator[ProcessExecutor]:
    running = ProcessExecutor(lambda _: DEMO, SandboxPolicy())
    yield running
    running.close()


def test_a_promise_style_action_gets_its_message_config_and_snapshot(executor: ProcessExecutor) -> None:
    first = executor.execute(invocation("greet", {"name": "Ada"}, snapshot={"count": 4}))
    assert first.ok, first.error
    assert first.outputs[0].data["greeting"] == "hello Ada" and first.outputs[0].data["keyLength"] == 8
    assert first.snapshot == {"count": 5}
    assert ("info", "seen before: 4") in first.logs and ("info", "stderr: greeting Ada") in first.logs
    second = executor.execute(invocation("greet", {"name": "Bob"}))
    assert second.outputs[0].data["pid"] == first.outputs[0].data["pid"]  # the same warm runner


def test_a_callback_style_action_emits_several_messages_then_ends(executor: ProcessExecutor) -> None:
    split = executor.execute(invocation("legacy", {"items": [1, 2, 3]}))
    assert split.ok, split.error
    assert [o.data for o in split.outputs] == [{"item": 1}, {"item": 2}, {"item": 3}]


def test_errors_and_rebounds(executor: ProcessExecutor) -> None:
    failed = executor.execute(invocation("fail", {"what": "this"}))
    assert not failed.ok and failed.error == "cannot handle this"
    rebound = executor.execute(invocation("fail", {"rebound": True}))
    assert rebound.rebound_delay_s == 30 and "busy, later" in (rebound.error or "")
    missing = executor.execute(invocation("nope", {}))
    assert "no function" in (missing.error or "")


def test_verify_credentials(executor: ProcessExecutor) -> None:
    assert executor.verify("t", "sailor-demo", {"apiKey": "good-key"}) == (True, None)
    assert executor.verify("t", "sailor-demo", {"apiKey": "bad"}) == (False, "the API key is not accepted")


def test_output_on_stdout_and_errors_thrown_later_do_not_break_the_runner(executor: ProcessExecutor) -> None:
    before = executor.execute(invocation("greet", {"name": "A"})).outputs[0].data["pid"]
    noisy = executor.execute(invocation("noisy", {}))
    assert noisy.ok and noisy.outputs[0].data == {"quiet": False}, noisy.error
    assert any("this is not an answer" in text for _, text in noisy.logs)
    late = executor.execute(invocation("noisy", {"throwLater": True}))
    assert not late.ok and "thrown from a timer" in (late.error or "")
    after = executor.execute(invocation("greet", {"name": "B"}))
    assert after.ok and after.outputs[0].data["pid"] == before  # the same runner, still in step


def test_activation_asks_whether_the_functions_load_before_any_message(tmp_path: Path) -> None:
    from runtime.executors.process import RunnerNotReady

    copy = tmp_path / "demo"
    shutil.copytree(DEMO, copy)
    (copy / "lib" / "actions" / "legacy.js").write_text("require('a-module-that-was-never-installed');\n")
    executor = ProcessExecutor(lambda _: copy, SandboxPolicy())
    try:
        executor.warm_up("t", "sailor-demo", functions=("greet",))  # the flow calls only greet: fine
        with pytest.raises(
            RunnerNotReady, match="does not load: Cannot find module 'a-module-that-was-never"
        ):
            executor.warm_up("t", "sailor-demo", functions=("greet", "legacy"))
        with pytest.raises(RunnerNotReady, match=r"does not load: no function \"nope\""):
            executor.warm_up("t", "sailor-demo", functions=("nope",))
    finally:
        executor.close()


def test_a_dynamic_selects_choices_come_from_the_actions_model_function(executor: ProcessExecutor) -> None:
    options = executor.options(
        "t", "sailor-demo", "greet", "listStyles", {"language": "fr"}, {"apiKey": "good-key"}
    )
    assert options == {"warm": "Warm", "formal": "Formal (fr)"}
    with pytest.raises(OptionsError, match="the API key wrong was refused"):
        executor.options("t", "sailor-demo", "greet", "listStyles", {}, {"apiKey": "wrong"})
    with pytest.raises(OptionsError, match='no model function "nope"'):
        executor.options("t", "sailor-demo", "greet", "nope", {}, {})
