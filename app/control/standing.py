"""A flow's standing with the bad-citizen watch (app/control/citizens.py), kept in Redis beside its tenant's
keys: its level, why, and since when."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import orjson
import redis

from app.runtime_ids import runtime_id
from runtime.bus.keys import TenantKeys

LEVELS = ("good", "low priority", "throttled", "suspended")


@dataclass(frozen=True)
class Standing:
    level: int = 0
    calm: int = 0  # minutes without a bad one since the last step
    reason: str = ""
    since: str = ""  # when it reached this level (UTC, ISO)

    @property
    def label(self) -> str:
        return LEVELS[self.level]


def standing_key(tenant: str) -> str:
    return f"{TenantKeys(tenant).base}:citizens"


def standings(client: redis.Redis, tenant: str) -> dict[str, Standing]:
    """flow (runtime id) -> its standing, for the flows with one."""
    raw = client.hgetall(standing_key(tenant))
    return {flow.decode(): Standing(**orjson.loads(doc)) for flow, doc in raw.items()}


def standing_of(client: redis.Redis, tenant_id: uuid.UUID, flow_id: uuid.UUID) -> Standing:
    raw = client.hget(standing_key(runtime_id(tenant_id)), runtime_id(flow_id))
    return Standing(**orjson.loads(raw)) if raw else Standing()


def pardon(client: redis.Redis, tenant_id: uuid.UUID, flow_id: uuid.UUID) -> None:
    """A person activated the flow: its record starts clean."""
    tk = TenantKeys(runtime_id(tenant_id))
    pipe = client.pipeline(transaction=False)
    pipe.hdel(standing_key(tk.tenant), runtime_id(flow_id))
    pipe.hdel(tk.penalties, tk.queue(runtime_id(flow_id)))
    pipe.execute()
