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

    def delay(self, seconds: float) -> None:
        """Hold this step's outputs back for `seconds` (without occupying the worker)."""
        self.delay_outputs_s = max(0.0, float(seconds))
