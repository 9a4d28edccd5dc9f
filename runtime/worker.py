"""The worker: reads step messages, runs the steps, and commits their outputs with the acknowledgement.

Delivery is at-least-once. A message is acknowledged only in the same atomic commit that makes its outputs,
retries or dead letter durable. A worker that dies leaves its messages pending; after the visibility timeout
another worker claims them (XAUTOCLAIM) and runs them again, so a step may see a message twice: it can
recognise the repeat by `context.message_id`, which stays the same across redeliveries and retries.
What one message's processing produces (including fused steps) is decided in runtime/processing.py; which
messages a worker takes next, in runtime/coordinator/ (fair share between tenants and flows, quotas).
"""

from __future__ import annotations

import contextlib
import functools
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
from runtime.coordinator.doorbell import Doorbell
from runtime.coordinator.fair_queue import FairnessConfig, FairQueue, Taken
from runtime.coordinator.outbound import OutboundPacer
from runtime.coordinator.quotas import QuotaStore, TenantQuota
from runtime.executors.warm import WarmSet
from runtime.flows.compiler import ExecutionPlan, FlowValidationError, PlanStep
from runtime.flows.plans import PlanCache, PlanNotFoundError
from runtime.net.egress import EgressPolicy
from runtime.net.egress_store import EgressStore
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
    # Trimming streams and retiring queues of flows idle for `queue_idle_s` happen this often.
    maintenance_interval_s: float = 5.0
    queue_idle_s: float = 3_600.0
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
    fairness: FairnessConfig = field(default_factory=FairnessConfig)
    # The quota of a tenant the hub wrote none for (runtime/coordinator/quotas.py).
    default_quota: TenantQuota = field(default_factory=TenantQuota)
    # Several step loops of one process share its executors; only one of them starts and stops runners.
    manages_executors: bool = True


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
        self._quotas: dict[str, TenantQuota] = {}
        self._penalties: dict[str, str] = {}  # queue -> penalty of the bad-citizen watch
        self._slots = 1
        self.fair = FairQueue(self.bus.redis, self.config.fairness)
        self._quota_store = QuotaStore(self.bus.redis)
        self._egress_store = EgressStore(self.bus.redis)
        self._doorbell = Doorbell(self.bus.redis)
        self._next_housekeeping = 0.0
        self._next_maintenance = 0.0
        self._next_warm = 0.0
        self._warm = WarmSet(self.bus.redis)
        self._threads: ThreadPoolExecutor | None = None

    # -- the loop -------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        log.info("worker %s started", self.config.name)
        try:
            while not stop.is_set():
                try:
                    self.run_once()
                except redis.ConnectionError as exc:
                    # Redis restarting or a network blip: nothing was committed, so nothing is lost; wait, retry.
                    log.warning("worker %s lost Redis (%s); retrying in 1 s", self.config.name, exc)
                    stop.wait(1.0)
        finally:
            self.close()
        log.info("worker %s stopped after %d messages", self.config.name, self.stats.processed)

    def close(self) -> None:
        self._doorbell.close()
        # On failure it drops out of the count by itself after a few seconds.
        with contextlib.suppress(redis.RedisError):
            self.fair.leave(self.config.name)

    def run_once(self) -> int:
        """Housekeeping when due, then one batch: take by fair share, execute, commit. Returns messages
        processed."""
        processed = 0
        if time.monotonic() >= self._next_housekeeping:
            processed += self.housekeeping()
            self._next_housekeeping = time.monotonic() + self.config.housekeeping_interval_s
        self._doorbell.clear()
        choice = self.fair.take(
            self.config.name, self._tenants, self._quotas, self.config.batch_size, self._slots
        )
        if choice.taken is not None:
            try:
                return processed + self.process(choice.taken.deliveries, choice.taken)
            except Exception:
                # Not committed: the messages come back after the visibility timeout; the lease and the charge
                # taken up front go now, not a minute later (unless the settle reached Redis already).
                if not choice.taken.settled:
                    with contextlib.suppress(redis.RedisError):
                        self.fair.release(choice.taken, self._quota(choice.taken.tenant))
                raise
        wait = min(self.config.block_ms / 1000, max(0.0, self._next_housekeeping - time.monotonic()))
        if choice.capped:
            # Work held back by a quota is freed by another worker's settle, which rings no bell.
            wait = min(wait, 0.02)
        self._doorbell.wait(wait)
        return processed

    def housekeeping(self) -> int:
        """Refresh tenants and quotas, move due retries/delays onto their queues, take over abandoned
        messages; now and then trim streams and retire idle queues."""
        self._tenants = self.bus.tenants()
        self._quotas = self._quota_store.read(self._tenants, self.config.default_quota)
        # Hosts an administrator allowed since the worker started (the Activity page), on top of its config.
        self.processor.egress = self._egress_store.policy(self.config.egress)
        self._penalties = self.fair.penalties(self._tenants)
        self._refresh_pacers()
        self._slots = self.fair.announce(self.config.name)
        maintenance = time.monotonic() >= self._next_maintenance
        if maintenance:
            self._next_maintenance = time.monotonic() + self.config.maintenance_interval_s
        processed = 0
        if not self.config.manages_executors:
            return processed  # the process's first slot does the rest for all of them
        for tenant in self._tenants:
            self.bus.promote_due(tenant)
            if maintenance:
                self.bus.adopt_legacy_queue(tenant)
            for queue in self.bus.queues(tenant):
                processed += self._reclaim(queue)
                if maintenance:
                    self.bus.trim(queue)
                    self.bus.retire_queue(queue, int(self.config.queue_idle_s * 1000))
            if maintenance:
                self.bus.trim(TenantKeys(tenant).events)
        runners = {t: q.max_warm_runners for t, q in self._quotas.items() if q.max_warm_runners}
        memory = {t: q.max_runner_memory_mb for t, q in self._quotas.items() if q.max_runner_memory_mb}
        for executor in self.executors.values():
            set_limits = getattr(executor, "set_tenant_limits", None)
            if set_limits is not None:
                set_limits(runners, memory)
        if time.monotonic() >= self._next_warm:
            self.keep_warm()
            self._next_warm = time.monotonic() + self.config.warm_interval_s
        for executor in self.executors.values():
            stop_idle = getattr(executor, "stop_idle", None)
            if stop_idle is not None:  # runners unused for a while are stopped (scale to zero)
                stop_idle()
        return processed

    def _refresh_pacers(self) -> None:
        """Outbound rate quotas: one pacer per tenant that has one, kept while its rate stays the same."""
        current = self.processor.pacers
        pacers = {}
        for tenant, quota in self._quotas.items():
            if quota.outbound_rps:
                old = current.get(tenant)
                same = isinstance(old, OutboundPacer) and old.rps == quota.outbound_rps
                pacers[tenant] = old if same else OutboundPacer(self.bus.redis, tenant, quota.outbound_rps)
        self.processor.pacers = pacers

    def _reclaim(self, queue: str) -> int:
        reclaimed = self.bus.reclaim(queue, self.config.name, self.config.visibility_timeout_ms)
        if not reclaimed:
            return 0
        self.stats.reclaimed += len(reclaimed)
        log.warning(
            "worker %s reclaimed %d abandoned messages of %s", self.config.name, len(reclaimed), queue
        )
        return self.process(reclaimed)

    def keep_warm(self) -> None:
        """Start the runners pinned warm that this worker does not run yet; unpinned ones may go idle."""
        pinned = self._warm.pinned()
        for executor in self.executors.values():
            keep_warm = getattr(executor, "keep_warm", None)
            if keep_warm is not None:
                keep_warm(pinned)

    # -- processing -----------------------------------------------------------------------------------
    def process(self, deliveries: list[Delivery], taken: Taken | None = None) -> int:
        """Execute and commit; then charge the worker time used to the tenants and flows (settling the
        batch's lease when it was taken by fair share)."""
        if not deliveries:
            return 0
        started = time.perf_counter()
        self.bus.load_bodies(deliveries)
        resolved = {d.entry_id: self._resolve(d.envelope) for d in deliveries}
        snapshots = self._load_snapshots(deliveries, resolved)
        used: dict[str, float] = {}  # entry id -> seconds of work for it
        executed = self._execute_side_by_side(deliveries, resolved, snapshots, used)
        # A batch taken by fair share ends after its quantum: what is left goes back to its queue untouched
        # (its size came from an estimate, and a flow's next messages may be much slower than its last ones).
        cutoff = started + self.config.fairness.quantum_ms / 1000 if taken is not None else None
        done = 0
        batches: dict[str, CommitBatch] = {}
        for delivery in deliveries:
            batch = batches.get(delivery.stream)
            if batch is None:
                batch = batches[delivery.stream] = CommitBatch(
                    TenantKeys(delivery.envelope.tenant), delivery.stream
                )
            begun = time.perf_counter()
            if cutoff is not None and done and begun > cutoff and delivery.entry_id not in executed:
                batch.add(_put_back(delivery, batch))
                continue
            target = resolved[delivery.entry_id]
            snapshot = snapshots.get(delivery.entry_id, {})
            batch.add(self._process_one(delivery, target, batch, snapshot, executed.get(delivery.entry_id)))
            used[delivery.entry_id] = used.get(delivery.entry_id, 0.0) + time.perf_counter() - begun
            done += 1
        settle = None
        if taken is not None:  # charged in the commit's round trip
            used_ms, wall_ms = sum(used.values()) * 1000, (time.perf_counter() - started) * 1000
            quota = self._quota(taken.tenant)
            penalty = self._penalties.get(taken.queue)
            settle = functools.partial(self.fair.settle, taken=taken, quota=quota, used_ms=used_ms,
                                       wall_ms=wall_ms, done=done, penalty=penalty)  # fmt: skip
        try:
            self.stats.committed += self.bus.commit(list(batches.values()), settle)
        except redis.ResponseError:
            # Redis ran the round trip (a script failed in it): the settle in it was applied, once.
            if taken is not None:
                taken.settled = True
            raise
        if taken is not None:
            taken.settled = True
        self.stats.processed += done
        self.stats.failed, self.stats.dead = self.processor.failed, self.processor.dead_count
        if taken is None:
            self._charge(deliveries, used)
        return done

    def _charge(self, deliveries: list[Delivery], used: dict[str, float]) -> None:
        """Charge work done outside fair share's choice (messages taken over from a dead worker)."""
        by_queue: dict[tuple[str, str], float] = {}
        for delivery in deliveries:
            key = (delivery.envelope.tenant, delivery.stream)
            by_queue[key] = by_queue.get(key, 0.0) + used.get(delivery.entry_id, 0.0) * 1000
        for (tenant, queue), used_ms in by_queue.items():
            self.fair.charge(tenant, queue, self._quota(tenant), used_ms)

    def _quota(self, tenant: str) -> TenantQuota:
        return self._quotas.get(tenant, self.config.default_quota)

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
        used: dict[str, float],
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
                _timed,
                self.processor.execute,
                delivery.envelope,
                plan,
                step,
                snapshots.get(delivery.entry_id, {}),
            )
            for delivery, (plan, step) in wanted
        }
        results = {}
        for entry_id, future in futures.items():
            try:
                results[entry_id], used[entry_id] = future.result()
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
            effects.crashes += 1
            self.processor.dead(env, error, step, now_ms(), None, effects)
        else:
            self.processor.run(env, plan, step, snapshot, effects, executed)
        return effects.op(delivery.entry_id, env)


def _put_back(delivery: Delivery, batch: CommitBatch) -> dict[str, Any]:
    """An op that acknowledges the message and queues it again as it was (the run's count is unchanged)."""
    env = delivery.envelope
    return {
        "id": delivery.entry_id,
        "rid": env.run,
        "run": batch.key(batch.tenant_keys.run(env.run)),
        "delta": 0,
        "add": [env.encode().decode()],
    }


def _timed(function: Any, *args: Any) -> tuple[StepResult, float]:
    begun = time.perf_counter()
    return function(*args), time.perf_counter() - begun


def _crashed(delivery: Delivery, step: PlanStep) -> bool:
    return delivery.deliveries > max(step.retry.max_attempts, REBOUND_LIMIT) + CRASH_ALLOWANCE
