"""The worker: reads step messages, runs the steps, and commits their outputs with the acknowledgement.

Delivery is at-least-once. A message is acknowledged only in the same atomic commit that makes its outputs,
retries or dead letter durable. A worker that dies leaves its messages pending; after the visibility timeout
another worker claims them (XAUTOCLAIM) and runs them again, so a step may see a message twice: it can
recognise the repeat by `context.message_id`, which stays the same across redeliveries and retries.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from runtime.bus.envelope import Envelope, child_message_id
from runtime.bus.keys import TenantKeys
from runtime.bus.streams import CommitBatch, Delivery, StreamsBus, now_ms
from runtime.components.spec import ComponentResolver
from runtime.flows.compiler import ExecutionPlan, FlowValidationError, PlanStep
from runtime.flows.expressions import evaluate, truthy
from runtime.flows.plans import PlanCache, PlanNotFoundError
from runtime.steps.context import StepContext
from runtime.steps.executor import Executor, InlineExecutor, StepInvocation, StepResult
from runtime.steps.message import Message

log = logging.getLogger(__name__)

TRACE_LIMIT = 50
REBOUND_LIMIT = 10
# A message delivered this many times more than its step allows attempts, without ever being committed,
# is taken to crash or hang its worker: it goes to the dead letters instead of taking workers down forever.
CRASH_ALLOWANCE = 2


@dataclass(frozen=True)
class WorkerConfig:
    name: str
    batch_size: int = 100
    block_ms: int = 500
    visibility_timeout_ms: int = 60_000
    housekeeping_interval_s: float = 0.5
    record_data: bool = True
    record_limit_bytes: int = 16_384


@dataclass
class WorkerStats:
    processed: int = 0
    committed: int = 0
    failed: int = 0
    dead: int = 0
    reclaimed: int = 0


def backoff_seconds(step: PlanStep, attempt: int, rng: random.Random) -> float:
    """Exponential backoff with jitter: base * 2^(attempt-1), scaled by 0.5-1.5, capped."""
    policy = step.retry
    raw = policy.base_delay_s * (2 ** (attempt - 1))
    return min(policy.max_delay_s, raw * rng.uniform(0.5, 1.5))


def _preview(value: Any, limit: int) -> tuple[Any, bool]:
    """A value to record, truncated to about `limit` bytes of JSON (then kept as a marked string)."""
    encoded = orjson.dumps(value, default=str)
    if len(encoded) <= limit:
        return value, False
    return {"truncated": True, "preview": encoded[:limit].decode("utf-8", "ignore")}, True


@dataclass
class Worker:
    bus: StreamsBus
    components: ComponentResolver
    config: WorkerConfig
    executors: Mapping[str, Executor] = field(default_factory=lambda: {"inline": InlineExecutor()})
    stats: WorkerStats = field(default_factory=WorkerStats)

    def __post_init__(self) -> None:
        self.plans = PlanCache(self.bus, self.components)
        self._rng = random.Random()  # noqa: S311 - jitter, not security
        self._tenants: list[str] = []
        self._next_housekeeping = 0.0

    # -- the loop -------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        log.info("worker %s started", self.config.name)
        while not stop.is_set():
            try:
                self.run_once()
            except redis.ConnectionError as exc:
                # Redis restarting or a network blip: nothing was committed, so nothing is lost; wait and retry.
                log.warning("worker %s lost Redis (%s); retrying in 1 s", self.config.name, exc)
                stop.wait(1.0)
        log.info("worker %s stopped after %d messages", self.config.name, self.stats.processed)

    def run_once(self) -> int:
        """Housekeeping when due, then one batch: read, execute, commit. Returns messages processed."""
        processed = 0
        if time.monotonic() >= self._next_housekeeping:
            processed += self.housekeeping()
            self._next_housekeeping = time.monotonic() + self.config.housekeeping_interval_s
        if not self._tenants:
            time.sleep(min(self.config.block_ms / 1000, self.config.housekeeping_interval_s))
            return processed
        block = max(1, int(min(self.config.block_ms, (self._next_housekeeping - time.monotonic()) * 1000)))
        deliveries = self.bus.read(self.config.name, self._tenants, self.config.batch_size, block)
        return processed + self.process(deliveries)

    def housekeeping(self) -> int:
        """Refresh tenants, move due retries/delays onto the streams, take over abandoned messages, trim."""
        self._tenants = self.bus.tenants()
        processed = 0
        for tenant in self._tenants:
            self.bus.promote_due(tenant)
            reclaimed = self.bus.reclaim(tenant, self.config.name, self.config.visibility_timeout_ms)
            if reclaimed:
                self.stats.reclaimed += len(reclaimed)
                log.warning(
                    "worker %s reclaimed %d abandoned messages of %s",
                    self.config.name,
                    len(reclaimed),
                    tenant,
                )
                processed += self.process(reclaimed)
            self.bus.trim(tenant)
        return processed

    # -- processing -----------------------------------------------------------------------------------
    def process(self, deliveries: list[Delivery]) -> int:
        if not deliveries:
            return 0
        self.bus.load_bodies(deliveries)
        snapshots = self._load_snapshots(deliveries)
        batches: dict[str, CommitBatch] = {}
        for delivery in deliveries:
            tenant = delivery.envelope.tenant
            batch = batches.get(tenant)
            if batch is None:
                batch = batches[tenant] = CommitBatch(TenantKeys(tenant))
            self._process_one(delivery, batch, snapshots)
        self.stats.committed += self.bus.commit(list(batches.values()))
        self.stats.processed += len(deliveries)
        return len(deliveries)

    def _plan_step(self, envelope: Envelope) -> tuple[ExecutionPlan, PlanStep]:
        plan = self.plans.get(envelope.tenant, envelope.version)
        step = plan.steps.get(envelope.step)
        if step is None:
            raise PlanNotFoundError(
                f"step {envelope.step!r} does not exist in flow version {envelope.version}"
            )
        return plan, step

    def _load_snapshots(self, deliveries: list[Delivery]) -> dict[str, dict[str, Any]]:
        wanted: list[tuple[str, str, str]] = []
        for delivery in deliveries:
            env = delivery.envelope
            try:
                _, step = self._plan_step(env)
            except (PlanNotFoundError, FlowValidationError):
                continue
            if step.function.uses_snapshot:
                wanted.append((delivery.entry_id, TenantKeys(env.tenant).snapshots(env.flow), env.step))
        if not wanted:
            return {}
        pipe = self.bus.redis.pipeline(transaction=False)
        for _, key, node in wanted:
            pipe.hget(key, node)
        return {
            entry_id: orjson.loads(raw) if raw else {}
            for (entry_id, _, _), raw in zip(wanted, pipe.execute(), strict=True)
        }

    def _process_one(
        self, delivery: Delivery, batch: CommitBatch, snapshots: dict[str, dict[str, Any]]
    ) -> None:
        env = delivery.envelope
        tk = batch.tenant_keys
        op: dict[str, Any] = {"id": delivery.entry_id, "rid": env.run, "run": batch.key(tk.run(env.run))}
        if env.body_ref:
            op["bdel"] = batch.key(env.body_ref)
        started_ms = now_ms()
        try:
            _, step = self._plan_step(env)
        except (PlanNotFoundError, FlowValidationError) as exc:
            self._dead(op, env, f"cannot run: {exc}", None, started_ms, None)
            batch.add(op)
            return

        limit = max(step.retry.max_attempts, REBOUND_LIMIT) + CRASH_ALLOWANCE
        if delivery.deliveries > limit:
            error = (
                f"delivered {delivery.deliveries} times without finishing: the worker running it crashed or hung "
                "each time"
            )
            self._dead(op, env, error, step, started_ms, None)
            batch.add(op)
            return

        result = self._execute(env, step, snapshots.get(delivery.entry_id, {}))
        if result.ok:
            try:
                self._succeed(op, batch, env, step, result, started_ms)
            except _RouteError as exc:
                result.error, result.retryable = str(exc), False
                for effect in ("add", "delay", "bset"):  # nothing of the failed routing is committed
                    op.pop(effect, None)
                self._fail(op, env, step, result, started_ms)
        else:
            self._fail(op, env, step, result, started_ms)
        if result.reply is not None:
            op["reply"] = [batch.key(tk.reply(env.run)), orjson.dumps(result.reply, default=str).decode()]
        if result.snapshot is not None and result.ok:
            op["snap"] = [batch.key(tk.snapshots(env.flow)), env.step, orjson.dumps(result.snapshot).decode()]
        batch.add(op)

    def _execute(self, env: Envelope, step: PlanStep, snapshot: dict[str, Any]) -> StepResult:
        context = StepContext(
            tenant_id=env.tenant,
            flow_id=env.flow,
            run_id=env.run,
            step_id=env.step,
            message_id=env.mid,
            attempt=env.attempt,
            snapshot=dict(snapshot),
            test_mode=env.test,
        )
        handler = step.function.handler
        if handler is None:
            return StepResult(
                error=f"component {step.component.name!r} has no inline implementation and no other executor is "
                "configured for it",
                retryable=False,
            )
        message = Message.from_body(env.body or {})
        invocation = StepInvocation(
            component=step.component.name,
            function=step.function.id,
            fields=step.node.fields,
            message=message,
            context=context,
            timeout_s=step.node.settings.timeout_s,
        )
        return self.executors["inline"].execute(invocation, handler)

    def _child(
        self, env: Envelope, target: str, mid: str, body: dict[str, Any], encoded: bytes, batch: CommitBatch
    ) -> tuple[bytes, list]:
        child = Envelope(
            tenant=env.tenant,
            flow=env.flow,
            version=env.version,
            run=env.run,
            step=target,
            mid=mid,
            attempt=1,
            trace=[*env.trace[-(TRACE_LIMIT - 1) :], env.step],
            created_ms=env.created_ms,
            test=env.test,
        )
        stored = self.bus.place_body(batch.tenant_keys, child, body, encoded)
        bset = [batch.key(child.body_ref), stored.decode()] if stored else []
        return child.encode(), bset

    def _succeed(
        self,
        op: dict[str, Any],
        batch: CommitBatch,
        env: Envelope,
        step: PlanStep,
        result: StepResult,
        started_ms: int,
    ) -> None:
        payloads: list[str] = []
        bodies: list[list] = []
        for index, output in enumerate(result.outputs):
            body = output.to_body()
            encoded = orjson.dumps(body)  # once per output, however many edges it takes
            for route_index, route in enumerate(step.routes):
                if route.condition is not None:
                    try:
                        taken = truthy(evaluate(route.condition, output.data))
                    except Exception as exc:
                        raise _RouteError(
                            f"the condition on the edge to {route.target} failed: {exc}"
                        ) from None
                    if not taken:
                        continue
                mid = child_message_id(env.mid, env.step, route_index, index)
                payload, bset = self._child(env, route.target, mid, body, encoded, batch)
                payloads.append(payload.decode())
                if bset:
                    bodies.append(bset)
        if payloads:
            if result.delay_s > 0:
                due = now_ms() + int(result.delay_s * 1000)
                op["delay"] = [[due, p] for p in payloads]
            else:
                op["add"] = payloads
        if bodies:
            op["bset"] = bodies
        op["delta"] = len(payloads) - 1
        if not payloads:
            op["leaf"] = 1
        op["ev"] = [self._event("step.finished", "succeeded", env, step, result, started_ms)]

    def _fail(
        self, op: dict[str, Any], env: Envelope, step: PlanStep, result: StepResult, started_ms: int
    ) -> None:
        self.stats.failed += 1
        rebound = result.rebound_delay_s is not None
        allowed = max(step.retry.max_attempts, REBOUND_LIMIT) if rebound else step.retry.max_attempts
        if (result.retryable or rebound) and env.attempt < allowed:
            delay = result.rebound_delay_s if rebound else backoff_seconds(step, env.attempt, self._rng)
            retry = Envelope(**{**_fields(env), "attempt": env.attempt + 1})
            op["delay"] = [[now_ms() + int(delay * 1000), retry.encode().decode()]]
            op.pop("bdel", None)  # the retry still needs the body stored aside
            op["delta"] = 0
            status = "rebound" if rebound else "retrying"
            op["ev"] = [
                self._event("step.failed", status, env, step, result, started_ms, retry_in_s=round(delay, 3))
            ]
            return
        self._dead(op, env, result.error or "failed", step, started_ms, result)

    def _dead(
        self,
        op: dict[str, Any],
        env: Envelope,
        error: str,
        step: PlanStep | None,
        started_ms: int,
        result: StepResult | None,
    ) -> None:
        self.stats.dead += 1
        inline = Envelope(**{**_fields(env), "body_ref": None})
        doc = {"env": orjson.loads(inline.encode()), "error": error, "at": now_ms(), "body": env.body}
        op["dead"] = orjson.dumps(doc, default=str).decode()
        op["delta"] = -1
        op["failed"] = 1
        result = result or StepResult(error=error, retryable=False)
        result.error = error
        op["ev"] = [self._event("step.failed", "dead", env, step, result, started_ms)]

    def _event(
        self,
        kind: str,
        status: str,
        env: Envelope,
        step: PlanStep | None,
        result: StepResult,
        started_ms: int,
        **extra: Any,
    ) -> str:
        event: dict[str, Any] = {
            "t": kind,
            "run": env.run,
            "flow": env.flow,
            "version": env.version,
            "step": env.step,
            "mid": env.mid,
            "attempt": env.attempt,
            "status": status,
            "started": started_ms,
            "ms": round(result.duration_ms, 3),
            "executor": result.executor,
            "component": step.component.name if step else "",
            "function": step.function.id if step else "",
            **extra,
        }
        if result.error:
            event["error"] = result.error
        if result.logs:
            event["logs"] = [[level, text[:2000]] for level, text in result.logs]
        if self.config.record_data:
            limit = self.config.record_limit_bytes
            event["in"], cut_in = _preview((env.body or {}).get("data"), limit)
            if result.ok:
                event["out"], cut_out = _preview([o.data for o in result.outputs], limit)
            else:
                cut_out = False
            if cut_in or cut_out:
                event["cut"] = True
        return orjson.dumps(event, default=str).decode()


class _RouteError(Exception):
    pass


def _fields(env: Envelope) -> dict[str, Any]:
    return {name: getattr(env, name) for name in Envelope.__slots__}
