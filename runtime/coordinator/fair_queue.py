"""Weighted fair queueing between tenants, and between each tenant's flows, on measured worker time.

A worker asks `take` for its next batch. Tenants with work are ordered by virtual time (worker ms used divided
by weight, kept in Redis so every worker on every host shares it); the first whose quota and share allow it
gives a batch from its flow of lowest virtual time. After processing, `settle` charges what the batch really
cost and releases its lease.

Slots: every live worker is one slot. While other tenants are active (had work in the last `active_window_ms`),
a tenant may hold at most the larger of its weighted share of the slots and all slots but one per other active
tenant. So a tenant flooding with slow steps leaves a worker free for a tenant with a light load, whose
latency then stays close to what it is alone, and a lone tenant still gets every worker (work-conserving).
"""

from __future__ import annotations

import itertools
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import redis

from runtime.bus import keys
from runtime.bus.keys import TenantKeys
from runtime.bus.streams import Delivery, deliveries
from runtime.coordinator import scripts, usage
from runtime.coordinator.quotas import TenantQuota

LOW_PRIORITY_FACTOR = 4.0


@dataclass(frozen=True)
class FairnessConfig:
    quantum_ms: float = 50.0  # a batch should take about this long, so the next choice comes soon
    credit_ms: float = 2_000.0  # the most virtual time one with work may be behind the one furthest ahead
    active_window_ms: int = 10_000  # a tenant with work this recently keeps a slot in reserve
    lease_ms: int = 60_000  # a batch's lease expires with the visibility timeout
    default_cost_ms: float = 1.0  # expected cost of a message of a queue never measured
    worker_ttl_ms: int = 10_000  # a worker that did not announce itself this long is no longer counted


@dataclass
class Taken:
    """A batch taken from one tenant's queue, leased until settled."""

    tenant: str
    queue: str
    deliveries: list[Delivery]
    lease: str
    charged_ms: float  # charged up front to the queue
    cost_ms: float  # the queue's cost per message then
    charged_tenant: bool = True  # whether the tenant was charged up front too (not when it alone had work)
    settled: bool = False  # the settle went to Redis with the commit (the lease and charge are dealt with)


@dataclass
class TakeResult:
    taken: Taken | None = None
    capped: list[str] = field(default_factory=list)  # tenants with work held back by a quota or their share


class FairQueue:
    def __init__(self, client: redis.Redis, config: FairnessConfig | None = None) -> None:
        self.redis = client
        self.config = config or FairnessConfig()
        self._order = client.register_script(scripts.ORDER)
        self._take = client.register_script(scripts.TAKE)
        self._leases = itertools.count()
        self._lease_prefix = uuid.uuid4().hex[:12]

    # -- workers ----------------------------------------------------------------------------------------
    def announce(self, worker: str) -> int:
        """This worker is alive; returns how many workers are."""
        now = _now_ms()
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(keys.FAIR_WORKERS, {worker: now + self.config.worker_ttl_ms})
        pipe.zremrangebyscore(keys.FAIR_WORKERS, "-inf", now)
        pipe.zcard(keys.FAIR_WORKERS)
        return int(pipe.execute()[-1])

    def leave(self, worker: str) -> None:
        self.redis.zrem(keys.FAIR_WORKERS, worker)

    # -- choosing -------------------------------------------------------------------------------------
    def take(
        self,
        consumer: str,
        tenants: Sequence[str],
        quotas: Mapping[str, TenantQuota],
        most: int,
        slots: int,
    ) -> TakeResult:
        """The next batch by fair share, or none (no work, or all work held back by quotas)."""
        if not tenants:
            return TakeResult()
        now = _now_ms()
        recent = now - self.config.active_window_ms
        if len(tenants) == 1:  # nothing to choose between: straight to the tenant's queues
            with_work, seen = list(tenants), []
        else:
            pipe = self.redis.pipeline(transaction=False)
            for tenant in tenants:
                pipe.scard(TenantKeys(tenant).ready)
            pipe.zrangebyscore(keys.FAIR_SEEN, recent, "+inf")
            *counts, seen = pipe.execute()
            with_work = [t for t, n in zip(tenants, counts, strict=True) if n]
        if not with_work:
            return TakeResult()
        if len(with_work) == 1:
            ordered = with_work
        else:
            ordered = [
                t.decode()
                for t in self._order(
                    keys=[keys.FAIR_VTIME, keys.FAIR_SEEN], args=[now, self.config.credit_ms, *with_work]
                )
            ]
        active = set(with_work) | {t.decode() for t in seen}
        result = TakeResult()
        for tenant in ordered:
            quota = quotas.get(tenant, TenantQuota())
            # Under a concurrency quota a batch is leased whole: smaller batches let as many workers share
            # the quota at once as it allows.
            room = most
            if quota.max_concurrent_steps:
                room = max(1, min(most, quota.max_concurrent_steps // max(1, slots)))
            taken = self._take_from(
                consumer, tenant, quota, room, self.slot_cap(tenant, active, quotas, slots)
            )
            if isinstance(taken, Taken):
                if len(with_work) > 1:
                    # Charged now, so that other workers choosing meanwhile see it: no herd on one tenant.
                    self.redis.zincrby(keys.FAIR_VTIME, taken.charged_ms / quota.weight, tenant)
                else:
                    taken.charged_tenant = False
                result.taken = taken
                return result
            if taken == "capped":
                result.capped.append(tenant)
        return result

    @staticmethod
    def slot_cap(tenant: str, active: set[str], quotas: Mapping[str, TenantQuota], slots: int) -> int:
        """How many batches at once a tenant may have, given the other active tenants (0: no cap)."""
        others = active - {tenant}
        if not others or slots <= 1:
            return 0
        weights = {t: quotas.get(t, TenantQuota()).weight for t in active | {tenant}}
        share = math.floor(slots * weights[tenant] / sum(weights.values()))
        return max(1, share, slots - len(others))

    def _take_from(self, consumer: str, tenant: str, quota: TenantQuota, most: int, slot_cap: int):
        tk = TenantKeys(tenant)
        now = _now_ms()
        lease = f"{self._lease_prefix}-{next(self._leases)}"
        reply = self._take(
            keys=[
                tk.ready,
                tk.queue_vtime,
                tk.queue_cost,
                tk.leases,
                tk.penalties,
                tk.throttled_until,
            ],
            args=[
                consumer,
                now,
                now + self.config.lease_ms,
                lease,
                most,
                self.config.quantum_ms,
                quota.max_concurrent_steps,
                slot_cap,
                self.config.credit_ms,
                self.config.default_cost_ms,
            ],
        )
        if not reply:
            return None
        if reply[0] == b"CAP":
            return "capped"
        queue = reply[0].decode()
        # A script returns a stream entry's fields as a flat list.
        entries = [(entry_id, dict(zip(flat[::2], flat[1::2], strict=True))) for entry_id, flat in reply[3]]
        return Taken(
            tenant=tenant,
            queue=queue,
            deliveries=deliveries(queue, entries),
            lease=f"{lease}|{len(entries)}",
            charged_ms=float(reply[1]),
            cost_ms=float(reply[2]),
        )

    # -- settling -------------------------------------------------------------------------------------
    def settle(
        self,
        pipe: redis.client.Pipeline,
        taken: Taken,
        quota: TenantQuota,
        used_ms: float,
        wall_ms: float,
        done: int,
        penalty: str | None = None,
    ) -> None:
        """Add to `pipe` (the worker's commit): charge what the batch really used, learn its cost per message
        (from the `done` processed; the rest went back to the queue), release its lease. A flow under the `low`
        penalty is charged four times its time against the tenant's other flows."""
        tk = TenantKeys(taken.tenant)
        per_message = wall_ms / max(1, done)
        # A recent average: a flow whose steps got slower gets smaller batches within a few batches.
        cost = 0.7 * taken.cost_ms + 0.3 * per_message if taken.cost_ms else per_message
        pipe.zrem(tk.leases, taken.lease)
        factor = LOW_PRIORITY_FACTOR if penalty == "low" else 1.0
        pipe.zincrby(tk.queue_vtime, used_ms * factor - taken.charged_ms, taken.queue)
        pipe.hset(tk.queue_cost, taken.queue, f"{cost:.3f}")
        tenant_charge = used_ms - taken.charged_ms if taken.charged_tenant else used_ms
        pipe.zincrby(keys.FAIR_VTIME, tenant_charge / quota.weight, taken.tenant)
        pipe.zadd(keys.FAIR_SEEN, {taken.tenant: _now_ms()})
        usage.record(pipe, taken.tenant, used_ms, done)

    def release(self, taken: Taken, quota: TenantQuota) -> None:
        """A batch that could not be processed: its lease goes and what was charged up front is given back."""
        tk = TenantKeys(taken.tenant)
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrem(tk.leases, taken.lease)
        pipe.zincrby(tk.queue_vtime, -taken.charged_ms, taken.queue)
        if taken.charged_tenant:
            pipe.zincrby(keys.FAIR_VTIME, -taken.charged_ms / quota.weight, taken.tenant)
        pipe.execute()

    def penalties(self, tenants: Sequence[str]) -> dict[str, str]:
        """queue -> penalty, of all these tenants."""
        pipe = self.redis.pipeline(transaction=False)
        for tenant in tenants:
            pipe.hgetall(TenantKeys(tenant).penalties)
        return {q.decode(): p.decode() for found in pipe.execute() for q, p in found.items()}

    def charge(self, tenant: str, queue: str, quota: TenantQuota, used_ms: float) -> None:
        """Charge work done outside `take` (messages taken over from a dead worker)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zincrby(TenantKeys(tenant).queue_vtime, used_ms, queue)
        pipe.zincrby(keys.FAIR_VTIME, used_ms / quota.weight, tenant)
        usage.record(pipe, tenant, used_ms, 0)
        pipe.execute()


def leased_messages(leases: list[bytes]) -> int:
    """Messages in these leases (members `<lease id>|<messages>`, as TAKE writes them)."""
    return sum(int(m.rsplit(b"|", 1)[1]) for m in leases)


def _now_ms() -> int:
    return int(time.time() * 1000)
