"""One interface for running a step, whatever runs it (inline here; process and docker executors later)."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from runtime.steps.context import StepContext
from runtime.steps.errors import Rebound, StepError
from runtime.steps.message import Message


@dataclass(frozen=True)
class StepInvocation:
    component: str
    function: str
    fields: dict[str, Any]
    message: Message
    context: StepContext
    timeout_s: float = 60.0
    code: str = ""  # where the component's code is installed (executors other than inline)
    network: bool = False  # the component declared that it calls other systems (x-hub.network)
    instances: int = 1  # runners of this component the flow step asks for (executors other than inline)


@dataclass
class StepResult:
    outputs: list[Message] = field(default_factory=list)
    error: str | None = None
    retryable: bool = True
    rebound_delay_s: float | None = None
    snapshot: dict[str, Any] | None = None  # set only when the step changed it
    reply: dict[str, Any] | None = None
    logs: list[tuple[str, str]] = field(default_factory=list)
    delay_s: float = 0.0
    collected: tuple[str, int, int, Any] | None = None
    batched: tuple[int, float, Any] | None = None
    flushed: str | None = None
    duration_ms: float = 0.0
    executor: str = "inline"
    instance: str | None = None  # the container or process the step ran in (None: in the worker itself)
    crashed: bool = False  # the runner (process, container) died or hung: counts against the flow's record
    secrets: tuple[str, ...] = ()  # the step's credential values: masked in everything recorded of it

    @property
    def ok(self) -> bool:
        return self.error is None and self.rebound_delay_s is None


class Executor(Protocol):
    name: str

    def execute(self, invocation: StepInvocation, handler: Any) -> StepResult: ...


def normalise_outputs(value: Any) -> list[Message]:
    """A handler may return None (no output), a Message, a dict/value (one output's data) or a list of those."""
    if value is None:
        return []
    if isinstance(value, Message):
        return [value]
    if isinstance(value, list | tuple):
        return [v if isinstance(v, Message) else Message(data=v) for v in value]
    if hasattr(value, "__iter__") and not isinstance(value, dict | str | bytes):
        return [v if isinstance(v, Message) else Message(data=v) for v in value]
    return [Message(data=value)]


class InlineExecutor:
    """Runs trusted built-in handlers in the worker process: the fastest path, no isolation.

    A timeout cannot be enforced on in-process code; built-ins are written to respect theirs (HTTP timeouts).
    """

    name = "inline"

    def execute(self, invocation: StepInvocation, handler: Any) -> StepResult:
        context = invocation.context
        before = (
            copy.deepcopy(context.snapshot) if context.snapshot else {}
        )  # nested values change in place too
        started = time.perf_counter()
        result = StepResult(executor=self.name)
        try:
            result.outputs = normalise_outputs(handler(invocation.message, invocation.fields, context))
        except Rebound as exc:
            result.rebound_delay_s = exc.delay_s
            result.error = f"rebound: {exc}"
        except StepError as exc:
            result.error = str(exc) or exc.__class__.__name__
            result.retryable = exc.retryable
        except Exception as exc:  # a step's bug must fail the step, never the worker
            result.error = f"{exc.__class__.__name__}: {exc}"
        result.duration_ms = (time.perf_counter() - started) * 1000
        result.logs = context.logs
        result.reply = context.reply_value
        result.delay_s = context.delay_outputs_s
        result.collected = context.collected
        result.batched, result.flushed = context.batched, context.flushed
        if context.snapshot != before:
            result.snapshot = context.snapshot
        return result
