"""Fold the runtime's events (run.started, step.finished, step.failed, run.finished) into rows to write.

Events arrive at least once (a recorder may die after writing and before acknowledging), so every row has an
identity derived from the event itself: the run's id, and for a step execution its run, step, message id and
attempt. Writing the same events twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from app.storage.models import RunStatus

log = logging.getLogger(__name__)

# Fixed namespace: step-execution ids are uuid5(namespace, "run|step|message|attempt").
STEP_EXECUTION_NAMESPACE = uuid.UUID("1f0c9a56-3b8e-4d84-9d7a-6f1f2c8b7e10")
FINISHED = frozenset(
    s.value for s in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.PARTIALLY_FAILED, RunStatus.CANCELLED)
)
ERROR_LIMIT = 4000


def without_nul(value: Any) -> Any:
    """The value without NUL characters, which PostgreSQL refuses in text and JSONB."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    return value


LEVEL_ALIASES = {"warning": "warn", "critical": "error", "fatal": "error", "trace": "debug"}


def level_of(value: str) -> str:
    """One spelling per level, whatever a component wrote ("ERROR", "Warning"): the log filter compares them."""
    value = value.strip().lower()
    return LEVEL_ALIASES.get(value, value)


def from_ms(value: int | float) -> dt.datetime:
    return dt.datetime.fromtimestamp(value / 1000, dt.UTC)


def step_execution_id(run: str, step: str, message_id: str, attempt: int) -> uuid.UUID:
    return uuid.uuid5(STEP_EXECUTION_NAMESPACE, f"{run}|{step}|{message_id}|{attempt}")


@dataclass
class RunChange:
    """What the events of one batch say about one run; merged into the stored row by the writer."""

    run_id: uuid.UUID
    tenant_id: uuid.UUID
    flow_id: uuid.UUID
    version_id: uuid.UUID | None
    started_at: dt.datetime | None = None
    trigger: str | None = None
    test_mode: bool | None = None
    replay_of: uuid.UUID | None = None
    status: str | None = None
    finished_at: dt.datetime | None = None
    error: str | None = None


@dataclass
class RecordBatch:
    # Keyed by (tenant, run): an event can only ever change a run of the tenant whose stream it came from.
    runs: dict[tuple[uuid.UUID, uuid.UUID], RunChange] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    logs: dict[uuid.UUID, list[dict[str, Any]]] = field(default_factory=dict)  # by step execution id
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.runs) + len(self.steps)


def _uuid(value: Any) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


class EventFolder:
    """Accumulates events of many tenants into one RecordBatch."""

    def __init__(self) -> None:
        self.batch = RecordBatch()

    def add(self, tenant: str, event: dict[str, Any]) -> None:
        tenant_id, run_id, flow_id = _uuid(tenant), _uuid(event.get("run")), _uuid(event.get("flow"))
        if tenant_id is None or run_id is None:
            # Not a run of this hub's database (a benchmark or a foreign producer): nothing to record.
            self.batch.skipped += 1
            return
        change = self.batch.runs.get((tenant_id, run_id))
        if change is None:
            if flow_id is None:  # run.finished carries no flow: the run must be known already
                change = RunChange(run_id, tenant_id, uuid.UUID(int=0), None)
            else:
                change = RunChange(run_id, tenant_id, flow_id, _uuid(event.get("version")))
            self.batch.runs[(tenant_id, run_id)] = change
        elif flow_id is not None and change.flow_id.int == 0:
            change.flow_id, change.version_id = flow_id, _uuid(event.get("version"))
        kind = event.get("t")
        if kind == "run.started":
            change.started_at = from_ms(event["ts"])
            change.trigger = str(event.get("trigger") or "manual")[:20]
            change.test_mode = bool(event.get("test"))
            change.replay_of = _uuid(event.get("replay_of"))
        elif kind == "run.finished":
            change.status = str(event.get("status") or RunStatus.FAILED.value)
            change.finished_at = from_ms(event["ts"])
            if event.get("error") and change.error is None:  # a run refused by its flow's concurrency limit
                change.error = str(event["error"])
        elif kind in ("step.finished", "step.failed"):
            self._step(tenant_id, run_id, change, event)
        else:
            log.warning("recorder: unknown event type %r ignored", kind)
            self.batch.skipped += 1

    def _step(
        self, tenant_id: uuid.UUID, run_id: uuid.UUID, change: RunChange, event: dict[str, Any]
    ) -> None:
        step, mid, attempt = str(event["step"]), str(event["mid"]), int(event.get("attempt", 1))
        execution_id = step_execution_id(str(run_id), step, mid, attempt)
        started = from_ms(event["started"])
        duration = float(event.get("ms") or 0.0)
        error = event.get("error")
        if error is not None:
            error = str(error)[:ERROR_LIMIT]
        if event.get("status") == "dead" and change.error is None:
            change.error = f"{step}: {error or 'failed'}"
        self.batch.steps.append(
            {
                "id": execution_id,
                "tenant_id": tenant_id,
                "run_id": run_id,
                "step_id": step[:100],
                "component": str(event.get("component") or "")[:200],
                "function": str(event.get("function") or "")[:200],
                "attempt": attempt,
                "status": str(event.get("status") or "succeeded")[:20],
                "executor": str(event.get("executor") or "inline")[:20],
                "instance": str(event["instance"])[:100] if event.get("instance") else None,
                "message_id": mid[:100],
                "started_at": started,
                "finished_at": started + dt.timedelta(milliseconds=duration),
                "duration_ms": duration,
                "input": event.get("in"),
                "output": event.get("out"),
                "truncated": bool(event.get("cut")),
                "error": error,
            }
        )
        lines = [
            {
                "tenant_id": tenant_id,
                "run_id": run_id,
                "step_id": step[:100],
                "ts": started + dt.timedelta(milliseconds=duration),
                "level": level_of(str(level))[:10],
                "message": str(text),
            }
            for level, text in event.get("logs") or ()
        ]
        if lines:
            self.batch.logs[execution_id] = lines
