"""What a step may see and do besides returning outputs: its snapshot, logs, a reply, its credential."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runtime.net.egress import EgressPolicy
from runtime.steps.errors import Rebound


@dataclass
class StepContext:
    tenant_id: str
    flow_id: str
    run_id: str
    step_id: str
    # Stable across redeliveries of the same message: a step with side effects de-duplicates on it.
    message_id: str
    attempt: int
    snapshot: dict[str, Any] = field(default_factory=dict)
    credential: dict[str, Any] | None = None
    test_mode: bool = False
    logs: list[tuple[str, str]] = field(default_factory=list)
    reply_value: dict[str, Any] | None = None
    delay_outputs_s: float = 0.0
    # (group, index, count, value): this message's part of a group that one later message carries whole.
    collected: tuple[str, int, int, Any] | None = None
    batched: tuple[int, float, Any] | None = None  # (size, window seconds, value)
    flushed: str | None = None  # the batch generation a window's end asks to send
    # Where the step may connect to (outbound HTTP); internal addresses only when an administrator allows them.
    egress: EgressPolicy = field(default_factory=EgressPolicy)

    def log(self, message: str, level: str = "info") -> None:
        self.logs.append((level, str(message)))

    def reply(self, body: Any = None, status: int = 200, headers: dict[str, str] | None = None) -> None:
        """Answer the caller waiting on a synchronous webhook."""
        self.reply_value = {"status": status, "headers": headers or {}, "body": body}

    def rebound(self, reason: str, delay_s: float = 10.0) -> None:
        raise Rebound(reason, delay_s)

    def collect(self, group: str, index: int, count: int, value: Any) -> None:
        """Hand `value` in as part `index` of `count` of `group`: when the last part is in, one message with
        all of them in order goes to this step again (committed atomically; a redelivered part counts once)."""
        self.collected = (group, int(index), int(count), value)

    def batch(self, size: int, window_s: float, value: Any) -> None:
        """Hand `value` in to this step's batch (one per flow and step, across runs): when `size` values are in,
        or `window_s` after the first one (0: no time limit), one message with all of them in arrival order
        goes to this step again, in the run of the message that completed it or, at the window's end, in the
        run of the first. Committed atomically: a redelivered message counts once."""
        self.batched = (int(size), float(window_s), value)

    def flush_batch(self, generation: str) -> None:
        """At a window's end: send the batch `generation` started, unless it was sent (full) already."""
        self.flushed = str(generation)

    def delay(self, seconds: float) -> None:
        """Hold this step's outputs back for `seconds` (without occupying the worker)."""
        self.delay_outputs_s = max(0.0, float(seconds))
