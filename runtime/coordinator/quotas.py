"""A tenant's quotas as the data plane sees them: written to Redis by the hub (from its database and the
configured defaults), read by workers and routers without SQL."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields

import redis

from runtime.bus.keys import TenantKeys


@dataclass(frozen=True)
class TenantQuota:
    """0 means "no limit". `weight` is the tenant's share of worker time against other busy tenants."""

    weight: int = 1
    max_concurrent_steps: int = 0
    max_warm_runners: int = 0
    max_runner_memory_mb: int = 0  # all its warm runners' memory limits together, in each worker
    max_backlog: int = 0
    webhook_rps: int = 0
    outbound_rps: int = 0

    def __post_init__(self) -> None:
        if self.weight < 1:
            raise ValueError("a tenant's weight must be at least 1")
        for item in fields(self):
            if getattr(self, item.name) < 0:
                raise ValueError(f"{item.name} cannot be negative")


_NAMES = {item.name for item in fields(TenantQuota)}


class QuotaStore:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def write(self, tenant: str, quota: TenantQuota) -> None:
        self.redis.hset(TenantKeys(tenant).quota, mapping={k: int(v) for k, v in asdict(quota).items()})

    def read(self, tenants: Iterable[str], default: TenantQuota | None = None) -> dict[str, TenantQuota]:
        """Each tenant's quota; a tenant the hub has not written one for gets `default`."""
        tenants = list(tenants)
        default = default or TenantQuota()
        pipe = self.redis.pipeline(transaction=False)
        for tenant in tenants:
            pipe.hgetall(TenantKeys(tenant).quota)
        result = {}
        for tenant, raw in zip(tenants, pipe.execute(), strict=True):
            values = {k.decode(): int(v) for k, v in raw.items() if k.decode() in _NAMES}
            result[tenant] = TenantQuota(**{**asdict(default), **values}) if values else default
        return result
