"""From one delivered step message to the effects its commit applies: outputs, retries, dead letters, events.

The step runs through an executor; its outputs are routed along the edges whose condition holds. An output
of a fusible step bound for another fusible step (cheap, pure, built-in: pass-through triggers, transform,
filter, split, log, reply) is not sent through the stream: that step runs right here, and so on down the
chain, up to `fuse_limit` steps per delivered message. Everything the chain produced is committed together
with the acknowledgement of the one delivered message, so the guarantees are those of a single step: if the
worker dies before the commit, the message is delivered again and the whole chain re-runs, giving its
messages the same ids. A fused step that fails is retried or dead-lettered on its own, exactly as if it had
been delivered, while what came before it stays committed. Every step, fused or not, gets its own event.
Nothing is fused after a step with I/O, so its result is durable before anything runs on it.
"""

from __future__ import annotations

import copy
import dataclasses
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from runtime.bus.envelope import Envelope, child_message_id
from runtime.bus.streams import CommitBatch, StreamsBus, now_ms
from runtime.executors.warm import executor_name
from runtime.flows.compiler import ExecutionPlan, PlanStep
from runtime.flows.expressions import evaluate, truthy
from runtime.log_context import bound
from runtime.net.egress import EgressPolicy
from runtime.steps.context import StepContext
from runtime.steps.credentials import (
    CachedCredentials,
    CredentialUnavailable,
    mask,
    redact,
)
from runtime.steps.executor import Executor, StepInvocation, StepResult
from runtime.steps.message import Message

TRACE_LIMIT = 50
# Where the commit script puts the collected parts of an aggregate (a JSON string no data can be equal to:
# the script replaces the first occurrence, and the envelope's body comes before anything else of the data).
AGGREGATE_PLACEHOLDER = "__hub_aggregate_parts__"
REBOUND_LIMIT = 10


@dataclass
class Effects:
    """Everything one delivered message's processing commits, in the shape of the COMMIT script's op."""

    batch: CommitBatch
    add: list[str] = field(default_factory=list)
    delay: list[list[Any]] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)
    bset: list[list[Any]] = field(default_factory=list)
    snap: list[list[Any]] = field(default_factory=list)
    reply: list[list[Any]] = field(default_factory=list)
    agg: list[list[Any]] = field(default_factory=list)
    bat: list[list[Any]] = field(default_factory=list)  # values handed in to a batch
    bfl: list[list[Any]] = field(default_factory=list)  # a batch's window ended
    ev: list[str] = field(default_factory=list)
    leaves: int = 0
    failed: int = 0
    crashes: int = 0  # runners that died on this message, and messages that crashed their workers
    kept_bodies: set[str] = field(default_factory=set)
    budget: int = 0  # fused steps still allowed

    def op(self, entry_id: str, env: Envelope) -> dict[str, Any]:
        tk = self.batch.tenant_keys
        # In flight afterwards: what went onto the stream or the delayed set, minus the message consumed.
        op: dict[str, Any] = {
            "id": entry_id,
            "rid": env.run,
            "run": self.batch.key(tk.run(env.run)),
            "delta": len(self.add) + len(self.delay) - 1,
        }
        for name in ("add", "delay", "dead", "bset", "snap", "reply", "agg", "bat", "bfl", "ev"):
            value = getattr(self, name)
            if value:
                op[name] = value
        if self.leaves:
            op["leaf"] = self.leaves
        if self.failed:
            op["failed"] = self.failed
        if self.crashes:
            op["crash"] = self.crashes
        # The delivered message's body, stored aside, goes with it, unless a retry of it still needs it.
        if env.body_ref and env.body_ref not in self.kept_bodies:
            op["bdel"] = self.batch.key(env.body_ref)
        return op


@dataclass(frozen=True)
class Recording:
    data: bool = True
    limit_bytes: int = 16_384


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


def fusible(step: PlanStep) -> bool:
    function = step.function
    return (
        function.fusible
        and function.handler is not None
        and step.component.runtime == "builtin"
        and step.node.settings.executor in (None, "inline")
    )


class _RouteError(Exception):
    pass


@dataclass
class Child:
    envelope: Envelope
    step: PlanStep
    encoded: bytes  # the body's JSON, encoded once however many edges it takes


class MessageProcessor:
    def __init__(
        self,
        bus: StreamsBus,
        executors: dict[str, Executor],
        recording: Recording,
        fuse_limit: int,
        rng: random.Random,
        egress: EgressPolicy | None = None,
        credentials: CachedCredentials | None = None,
    ) -> None:
        self.bus = bus
        self.executors = executors
        self.recording = recording
        self.fuse_limit = fuse_limit
        self.rng = rng
        self.egress = egress or EgressPolicy()
        self.credentials = credentials
        self.failed = 0
        self.dead_count = 0
        # tenant -> what its steps ask before each outbound HTTP request (its rate quota); set by the worker.
        self.pacers: Mapping[str, Callable[[], None]] = {}

    def _egress_of(self, tenant: str) -> EgressPolicy:
        pace = self.pacers.get(tenant)
        return self.egress if pace is None else dataclasses.replace(self.egress, pace=pace)

    def effects(self, batch: CommitBatch) -> Effects:
        return Effects(batch, budget=self.fuse_limit)

    # -- one step, then its fused successors ----------------------------------------------------------
    def run(
        self,
        env: Envelope,
        plan: ExecutionPlan,
        step: PlanStep,
        snapshot: dict[str, Any],
        effects: Effects,
        result: StepResult | None = None,
    ) -> None:
        """`result`: the step was already executed (the worker runs the steps of runner executors side by side
        before it builds the commit)."""
        # Microseconds, not milliseconds: fused steps start within the same millisecond, and the run history
        # orders a run's steps by their start.
        started = round(time.time() * 1000 - (result.duration_ms if result is not None else 0.0), 3)
        if result is None:
            result = self.execute(env, plan, step, snapshot)
        children: list[Child] = []
        if result.ok:
            try:
                children = self._route(env, plan, step, result)
            except _RouteError as exc:  # its message may quote the step's output: masked like the step's own
                result.error, result.retryable = redact(str(exc), result.secrets), False
        tk = effects.batch.tenant_keys
        if result.reply is not None:
            key = effects.batch.key(tk.reply(env.run))
            effects.reply.append([key, orjson.dumps(result.reply, default=str).decode()])
        if not result.ok:
            self._fail(env, step, result, started, effects)
            return
        if result.snapshot is not None:
            key = effects.batch.key(tk.snapshots(env.flow))
            effects.snap.append([key, env.step, orjson.dumps(result.snapshot).decode()])
        effects.ev.append(self._event("step.finished", "succeeded", env, step, result, started))
        if result.collected is not None:
            effects.agg.append(self._collect(env, result.collected, effects))
        elif result.batched is not None:
            effects.bat.append(self._batch(env, result.batched, effects))
        elif result.flushed is not None:
            effects.bfl.append(self._flush(env, result.flushed, effects))
            effects.leaves += 1  # the first message's run ends here, unless the batch goes on in it
        elif not children:
            effects.leaves += 1  # a part handed to an aggregate or a batch is not an end of the run
        due = now_ms() + int(result.delay_s * 1000) if result.delay_s > 0 else None
        # Only after a fusible step: the result of a step with I/O is committed before anything runs on it, so
        # a crash further down the chain can never make that I/O happen again.
        chain = due is None and fusible(step)
        for child in children:
            if chain and effects.budget > 0 and fusible(child.step):
                effects.budget -= 1
                self.run(child.envelope, plan, child.step, {}, effects)
            else:
                self._emit(effects, child.envelope, due, child.encoded)

    def _collect(self, env: Envelope, collected: tuple[str, int, int, Any], effects: Effects) -> list[Any]:
        """The commit script's part of an aggregate: store this part; the commit that completes the group
        sends the whole group (in order, in place of the placeholder) to this step again."""
        group, index, count, value = collected
        metadata = {k: v for k, v in (env.body or {}).get("metadata", {}).items() if k != "split"}
        body = {"data": AGGREGATE_PLACEHOLDER, "metadata": {**metadata, "aggregated": True}}
        whole = _next(env, env.step, child_message_id(group, env.step, 0, 0), body)
        key = effects.batch.key(effects.batch.tenant_keys.aggregate(env.flow, group))
        return [key, index, orjson.dumps(value, default=str).decode(), count, whole.encode().decode()]

    def _batch_keys(self, env: Envelope, effects: Effects) -> tuple[int, int]:
        tk = effects.batch.tenant_keys
        return effects.batch.key(tk.batch(env.flow, env.step)), effects.batch.key(
            tk.batch_generation(env.flow, env.step)
        )

    def _whole_batch(self, env: Envelope, generation: str) -> str:
        """The message the commit script completes with the batch's values (in place of the placeholder)."""
        metadata = {
            k: v for k, v in (env.body or {}).get("metadata", {}).items() if k not in ("split", "batch_flush")
        }
        body = {"data": AGGREGATE_PLACEHOLDER, "metadata": {**metadata, "batched": True}}
        return _next(env, env.step, child_message_id(generation, env.step, 0, 1), body).encode().decode()

    def _batch(self, env: Envelope, batched: tuple[int, float, Any], effects: Effects) -> list[Any]:
        """The commit script's part of a batch: append the value; the first value of a batch starts its window
        (a delayed message of this run to this step); the value that fills it sends the whole batch."""
        size, window_s, value = batched
        items, generation = self._batch_keys(env, effects)
        flush = _next(env, env.step, child_message_id(env.mid, env.step, 0, 2),
                      {"data": None, "metadata": {"batch_flush": env.mid}})  # fmt: skip
        return [items, generation, orjson.dumps(value, default=str).decode(), size, flush.encode().decode(),
                int(window_s * 1000), env.mid, self._whole_batch(env, env.mid)]  # fmt: skip

    def _flush(self, env: Envelope, generation: str, effects: Effects) -> list[Any]:
        items, generation_key = self._batch_keys(env, effects)
        return [items, generation_key, generation, self._whole_batch(env, generation)]

    def runs_side_by_side(self, step: PlanStep) -> bool:
        """Whether the step's executor may run several of its messages at once (runner pools)."""
        return bool(getattr(self._executor_for(step), "concurrent", False))

    def execute(
        self, env: Envelope, plan: ExecutionPlan, step: PlanStep, snapshot: dict[str, Any]
    ) -> StepResult:
        """Run the step (its credential resolved, its secrets masked in what it says); touches no batch, so
        the worker may call it from several threads."""
        handler = step.function.handler
        executor = self._executor_for(step)
        if executor is None:
            return StepResult(
                error=f"component {step.component.name!r} has no inline implementation and no other executor is "
                "configured for it",
                retryable=False,
            )
        credential, secrets = None, ()
        if step.node.credential_id:
            try:
                shared, secrets = self._credential(env.tenant, step)
                credential = copy.deepcopy(shared)  # the step may change its copy
            except CredentialUnavailable as exc:
                return StepResult(error=f"node {step.id!r}: {exc}", retryable=False)
            except Exception as exc:  # the vault or its database is unreachable: try again later
                return StepResult(error=f"node {step.id!r}: its credential cannot be read right now ({exc})")
        context = StepContext(
            tenant_id=env.tenant,
            flow_id=env.flow,
            run_id=env.run,
            step_id=env.step,
            message_id=env.mid,
            attempt=env.attempt,
            snapshot=dict(snapshot),
            credential=credential,
            test_mode=env.test,
            egress=self._egress_of(env.tenant),
        )
        invocation = StepInvocation(
            component=step.component.name,
            function=step.function.id,
            fields=step.node.fields,
            message=Message.from_body(env.body or {}),
            context=context,
            timeout_s=step.node.settings.timeout_s,
            code=step.component.code,
            network=(step.component.descriptor.get("x-hub") or {}).get("network") is True,
            instances=step.node.settings.instances,
        )
        with bound(tenant=env.tenant, flow=env.flow, run=env.run, step=env.step):  # on every line it logs
            result = executor.execute(invocation, handler)
        flow_secrets = self._run_secrets(env.tenant, plan)
        if flow_secrets:  # the step's own values stay in, even if the credential changed while it ran
            secrets = tuple(sorted(set(secrets) | set(flow_secrets), key=len, reverse=True))
        if secrets:
            # What the step says about its secret (a log line, an error) is masked before anything stores it.
            result.secrets = secrets
            if result.error:
                result.error = redact(result.error, result.secrets)
            result.logs = [(level, redact(text, result.secrets)) for level, text in result.logs]
        return result

    def _executor_for(self, step: PlanStep) -> Executor | None:
        return self.executors.get(executor_name(step))

    def _run_secrets(self, tenant: str, plan: ExecutionPlan) -> tuple[str, ...]:
        """Every secret of the flow's credentials: a step may pass its secret on (a server echoing a header),
        and the later steps' records must not show it either."""
        if self.credentials is None:
            return ()
        ids = {s.node.credential_id for s in plan.steps.values() if s.node.credential_id}
        return self.credentials.secrets_of(tenant, sorted(ids)) if ids else ()

    def _credential(self, tenant: str, step: PlanStep) -> tuple[dict[str, Any], tuple[str, ...]]:
        if self.credentials is None:
            raise CredentialUnavailable("this worker has no access to credentials (no vault configured)")
        assert step.node.credential_id is not None
        return self.credentials.resolve(tenant, step.node.credential_id)

    def _route(self, env: Envelope, plan: ExecutionPlan, step: PlanStep, result: StepResult) -> list[Child]:
        children = []
        trace = [*env.trace[-(TRACE_LIMIT - 1) :], env.step]
        for index, output in enumerate(result.outputs):
            body = output.to_body()
            encoded = b""
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
                encoded = encoded or orjson.dumps(body)
                mid = child_message_id(env.mid, env.step, route_index, index)
                child = _next(env, route.target, mid, body, trace)
                children.append(Child(child, plan.steps[route.target], encoded))
                if step.function.first_route_only:
                    break  # a router in "first match" mode: the edges are tried in order, like if/elif/else
        return children

    def _emit(
        self, effects: Effects, envelope: Envelope, due_ms: int | None, encoded: bytes | None = None
    ) -> None:
        """Put an envelope on the steps stream (or, with a due time, the delayed set)."""
        batch = effects.batch
        if envelope.body_ref is None:
            stored = self.bus.place_body(batch.tenant_keys, envelope, envelope.body or {}, encoded)
            if stored:
                effects.bset.append([batch.key(envelope.body_ref), stored.decode()])
        else:
            effects.kept_bodies.add(envelope.body_ref)
        payload = envelope.encode().decode()
        if due_ms is None:
            effects.add.append(payload)
        else:
            effects.delay.append([due_ms, payload])

    # -- failures -------------------------------------------------------------------------------------
    def _fail(
        self, env: Envelope, step: PlanStep, result: StepResult, started: float, effects: Effects
    ) -> None:
        self.failed += 1
        if result.crashed:
            effects.crashes += 1
        rebound = result.rebound_delay_s is not None
        allowed = max(step.retry.max_attempts, REBOUND_LIMIT) if rebound else step.retry.max_attempts
        if (result.retryable or rebound) and env.attempt < allowed:
            delay = result.rebound_delay_s if rebound else backoff_seconds(step, env.attempt, self.rng)
            assert delay is not None
            retry = dataclasses.replace(env, attempt=env.attempt + 1)
            self._emit(effects, retry, now_ms() + int(delay * 1000))
            status = "rebound" if rebound else "retrying"
            effects.ev.append(
                self._event("step.failed", status, env, step, result, started, retry_in_s=round(delay, 3))
            )
            return
        self.dead(env, result.error or "failed", step, started, result, effects)

    def dead(
        self,
        env: Envelope,
        error: str,
        step: PlanStep | None,
        started: float,
        result: StepResult | None,
        effects: Effects,
    ) -> None:
        self.dead_count += 1
        inline = dataclasses.replace(env, body_ref=None)
        # The body stays as it came: a replay must send the same message again.
        doc = {"env": orjson.loads(inline.encode()), "error": error, "at": now_ms(), "body": env.body}
        effects.dead.append(orjson.dumps(doc, default=str).decode())
        effects.failed += 1
        result = result or StepResult(error=error, retryable=False)
        result.error = error
        effects.ev.append(self._event("step.failed", "dead", env, step, result, started))

    # -- events ---------------------------------------------------------------------------------------
    def _event(
        self,
        kind: str,
        status: str,
        env: Envelope,
        step: PlanStep | None,
        result: StepResult,
        started: float,
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
            "started": started,
            "ms": round(result.duration_ms, 3),
            "executor": result.executor,
            "component": step.component.name if step else "",
            "function": step.function.id if step else "",
            **extra,
        }
        if result.error:
            event["error"] = result.error
        if result.instance:
            event["instance"] = result.instance
        if result.logs:
            event["logs"] = [[level, text[:2000]] for level, text in result.logs]
        if self.recording.data:
            limit = self.recording.limit_bytes
            event["in"], cut_in = _preview(mask((env.body or {}).get("data"), result.secrets), limit)
            cut_out = False
            if result.ok:
                event["out"], cut_out = _preview(
                    mask([o.data for o in result.outputs], result.secrets), limit
                )
            if cut_in or cut_out:
                event["cut"] = True
        return orjson.dumps(event, default=str).decode()


def _next(
    env: Envelope, step: str, mid: str, body: dict[str, Any], trace: list[str] | None = None
) -> Envelope:
    """A new message of the same run, for `step`, that went through `env`'s step."""
    return Envelope(
        tenant=env.tenant,
        flow=env.flow,
        version=env.version,
        run=env.run,
        step=step,
        mid=mid,
        attempt=1,
        body=body,
        trace=trace if trace is not None else [*env.trace[-(TRACE_LIMIT - 1) :], env.step],
        created_ms=env.created_ms,
        test=env.test,
    )
