"""The worker: reads step messages, runs the steps, and commits their outputs with the acknowledgement.

Delivery is at-least-once. A message is acknowledged only in the same atomic commit that makes its outputs,
retries or dead letter durable. A worker that dies leaves its messages pending; after the visibility timeout
another worker claims them (XAUTOCLAIM) and runs them again, so a step may see a message twice: it can
recognise the repeat by `context.message_id`, which stays the same across redeliveries and retries.
What one message's processing produces (including fused steps) is decided in runtime/processing.py.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from runtime.bus.envelope import Envelope
from runtime.bus.keys import TenantKeys
from runtime.bus.streams import CommitBatch, Delivery, StreamsBus, now_ms
from runtime.components.spec import ComponentResolver
from runtime.executors.warm import WarmSet
from runtime.flows.compiler import ExecutionPlan, FlowValidationError, PlanStep
from runtime.flows.plans import PlanCache, PlanNotFoundError
from runtime.net.egress import EgressPolicy
from runtime.processing import REBOUND_LIMIT, MessageProcessor, Recording
from runtime.steps.credentials import CachedCredentials, CredentialSource
from runtime.steps.executor import Executor, InlineExecutor, StepResult

log = logging.getLogger(__name__)

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
    # How often the runners pinned warm (active flows with a synchronous webhook) are checked and started.
    warm_interval_s: float = 2.0
    # Steps of runner executors (processes, containers) in one batch run side by side on this many threads;
    # each runner serves one at a time, so the executor's instances are the real limit per component.
    side_by_side: int = 16
    record_data: bool = True
    record_limit_bytes: int = 16_384
    # Fusible steps run in the same commit as the step before them, at most this many per delivered message
    # (0: every step goes through the stream).
    fuse_limit: int = 64
    # Internal hosts and networks steps may call (HUB_EGRESS_ALLOW); by default none.
    egress: EgressPolicy = field(default_factory=EgressPolicy)


@dataclass
class WorkerStats:
    processed: int = 0
    committed: int = 0
    failed: int = 0
    dead: int = 0
    reclaimed: int = 0


@dataclass
class Worker:
    bus: StreamsBus
    components: ComponentResolver
    config: WorkerConfig
    executors: Mapping[str, Executor] = field(default_factory=lambda: {"inline": InlineExecutor()})
    stats: WorkerStats = field(default_factory=WorkerStats)
    # Where steps' credentials come from (the hub's vault); without one, a step with a credential fails.
    credentials: CredentialSource | None = None

    def __post_init__(self) -> None:
        self.plans = PlanCache(self.bus, self.components)
        self.processor = MessageProcessor(
            self.bus,
            dict(self.executors),
            Recording(self.config.record_data, self.config.record_limit_bytes),
            self.config.fuse_limit,
            random.Random(),  # noqa: S311 - jitter, not security
            self.config.egress,
            CachedCredentials(self.credentials, generation=self.bus.credentials_generation)
            if self.credentials is not None
            else None,
        )
        self._tenants: list[str] = []
        self._next_housekeeping = 0.0
        self._next_warm = 0.0
        self._warm = WarmSet(self.bus.redis)
        self._threads: ThreadPoolExecutor | None = None

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
        if time.monotonic() >= self._next_warm:
            self.keep_warm()
            self._next_warm = time.monotonic() + self.config.warm_interval_s
        for executor in self.executors.values():
            stop_idle = getattr(executor, "stop_idle", None)
            if stop_idle is not None:  # runners unused for a while are stopped (scale to zero)
                stop_idle()
        return processed

    def keep_warm(self) -> None:
        """Start the runners pinned warm that this worker does not run yet; unpinned ones may go idle."""
        pinned = self._warm.pinned()
        for executor in self.executors.values():
            keep_warm = getattr(executor, "keep_warm", None)
            if keep_warm is not None:
                keep_warm(pinned)

    # -- processing -----------------------------------------------------------------------------------
    def process(self, deliveries: list[Delivery]) -> int:
        if not deliveries:
            return 0
        self.bus.load_bodies(deliveries)
        resolved = {d.entry_id: self._resolve(d.envelope) for d in deliveries}
        snapshots = self._load_snapshots(deliveries, resolved)
        executed = self._execute_side_by_side(deliveries, resolved, snapshots)
        batches: dict[str, CommitBatch] = {}
        for delivery in deliveries:
            tenant = delivery.envelope.tenant
            batch = batches.get(tenant)
            if batch is None:
                batch = batches[tenant] = CommitBatch(TenantKeys(tenant))
            target = resolved[delivery.entry_id]
            snapshot = snapshots.get(delivery.entry_id, {})
            batch.add(self._process_one(delivery, target, batch, snapshot, executed.get(delivery.entry_id)))
        self.stats.committed += self.bus.commit(list(batches.values()))
        self.stats.processed += len(deliveries)
        self.stats.failed, self.stats.dead = self.processor.failed, self.processor.dead_count
        return len(deliveries)

    def _resolve(self, envelope: Envelope) -> tuple[ExecutionPlan, PlanStep] | str:
        """The plan and step an envelope names, or why it cannot run."""
        try:
            plan = self.plans.get(envelope.tenant, envelope.version)
        except (PlanNotFoundError, FlowValidationError) as exc:
            return f"cannot run: {exc}"
        step = plan.steps.get(envelope.step)
        if step is None:
            return f"cannot run: step {envelope.step!r} does not exist in flow version {envelope.version}"
        return plan, step

    def _load_snapshots(
        self, deliveries: list[Delivery], resolved: dict[str, tuple[ExecutionPlan, PlanStep] | str]
    ) -> dict[str, dict[str, Any]]:
        wanted: list[tuple[str, str, str]] = []
        for delivery in deliveries:
            target, env = resolved[delivery.entry_id], delivery.envelope
            if not isinstance(target, str) and target[1].function.uses_snapshot:
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

    def _execute_side_by_side(
        self,
        deliveries: list[Delivery],
        resolved: dict[str, tuple[ExecutionPlan, PlanStep] | str],
        snapshots: dict[str, dict[str, Any]],
    ) -> dict[str, StepResult]:
        """Run the batch's steps of runner executors at once (a backlog of a slow component is served by
        several of its instances), before the commit is built in order as usual."""
        wanted = []
        for delivery in deliveries:
            target = resolved[delivery.entry_id]
            if (
                isinstance(target, str)
                or _crashed(delivery, target[1])
                or not self.processor.runs_side_by_side(target[1])
            ):
                continue
            wanted.append((delivery, target))
        if len(wanted) < 2:
            return {}
        if self._threads is None:
            self._threads = ThreadPoolExecutor(
                self.config.side_by_side, thread_name_prefix=f"{self.config.name}-steps"
            )
        futures = {
            delivery.entry_id: self._threads.submit(
                self.processor.execute, delivery.envelope, plan, step, snapshots.get(delivery.entry_id, {})
            )
            for delivery, (plan, step) in wanted
        }
        results = {}
        for entry_id, future in futures.items():
            try:
                results[entry_id] = future.result()
            except Exception as exc:  # one step's failure must not throw away the others' done work
                log.exception("worker %s: a step failed outside its executor", self.config.name)
                results[entry_id] = StepResult(
                    error=f"the step could not be run: {exc.__class__.__name__}: {exc}"
                )
        return results

    def _process_one(
        self,
        delivery: Delivery,
        target: tuple[ExecutionPlan, PlanStep] | str,
        batch: CommitBatch,
        snapshot: dict[str, Any],
        executed: StepResult | None = None,
    ) -> dict[str, Any]:
        env = delivery.envelope
        effects = self.processor.effects(batch)
        if isinstance(target, str):
            self.processor.dead(env, target, None, now_ms(), None, effects)
            return effects.op(delivery.entry_id, env)
        plan, step = target
        if _crashed(delivery, step):
            error = (
                f"delivered {delivery.deliveries} times without finishing: the worker running it crashed or hung "
                "each time"
            )
            self.processor.dead(env, error, step, now_ms(), None, effects)
        else:
            self.processor.run(env, plan, step, snapshot, effects, executed)
        return effects.op(delivery.entry_id, env)


def _crashed(delivery: Delivery, step: PlanStep) -> bool:
    return delivery.deliveries > max(step.retry.max_attempts, REBOUND_LIMIT) + CRASH_ALLOWANCE
