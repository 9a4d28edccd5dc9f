"""The egress allow list administrators edit at run time, as the runtime reads it: one Redis value that the
hub writes from its database, and every worker reads on its housekeeping round. What the configuration
allows (HUB_EGRESS_ALLOW) stays allowed; this list adds to it."""

from __future__ import annotations

import redis

from runtime.net.egress import EgressPolicy

KEY = "hub:egress:allow"


class EgressStore:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def write(self, entries: tuple[str, ...]) -> None:
        self.redis.set(KEY, ",".join(entries))

    def read(self) -> str:
        raw = self.redis.get(KEY)
        return raw.decode() if raw else ""

    def policy(self, base: EgressPolicy) -> EgressPolicy:
        """`base` with the administrators' entries added; an unreadable stored list adds nothing."""
        try:
            extra = EgressPolicy.parse(self.read())
        except ValueError:
            return base
        added = tuple(e for e in extra.allowed if e not in base.allowed)
        return base if not added else EgressPolicy(base.allowed + added, base.pace)
