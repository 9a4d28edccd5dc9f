"""One active scheduler among any number: a lease in Redis that its holder renews at every pass of its loop.
The others stand by, try at each of their passes, and take over within one lease time once the holder stops
renewing (killed, hung, cut off from Redis). A holder that cannot renew stops scheduling at its next pass."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from typing import Any

import redis
from rq_scheduler import Scheduler

log = logging.getLogger(__name__)

LEADER_KEY = "hub:scheduler:leader"
LEASE_S = (
    20  # four passes of a 5-second loop: a slow pass does not lose it, a dead holder is replaced in 20 s
)

# Renew when it is ours, take it when it is free: one script, so two standbys cannot both win.
_HOLD = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if current == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Lease:
    def __init__(
        self, client: redis.Redis, key: str = LEADER_KEY, lease_s: float = LEASE_S, holder: str = ""
    ) -> None:
        self.client, self.key, self.lease_ms = client, key, int(lease_s * 1000)
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._hold = client.register_script(_HOLD)
        self._release = client.register_script(_RELEASE)
        self.held = False

    def hold(self) -> bool:
        """True while this process holds the lease (renewed now); logs when it takes it over or loses it."""
        try:
            result = int(self._hold(keys=[self.key], args=[self.holder, self.lease_ms]))
        except redis.RedisError as exc:
            log.warning("scheduler lease: Redis did not answer (%s); not scheduling this pass", exc)
            result = 0
        if result == 2:
            log.info("scheduler lease taken by %s: this scheduler is the active one", self.holder)
        elif result == 0 and self.held:
            log.warning("scheduler lease lost by %s: standing by", self.holder)
        self.held = result > 0
        return self.held

    def release(self) -> None:
        with contextlib.suppress(redis.RedisError):  # else it expires by itself
            self._release(keys=[self.key], args=[self.holder])
        self.held = False

    def current(self) -> str | None:
        value = self.client.get(self.key)
        return value.decode() if isinstance(value, bytes) else value


class LeaderScheduler(Scheduler):
    """rq-scheduler's loop, moving due jobs only in the process that holds the lease. `on_lead` runs each time
    this process becomes the active one (installing the periodic jobs: idempotent, by fixed job ids)."""

    def __init__(self, *args: Any, lease: Lease, on_lead: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lease, self.on_lead = lease, on_lead

    def acquire_lock(self) -> bool:
        was = self.lease.held
        if not self.lease.hold():
            return False
        if not was and self.on_lead is not None:
            self.on_lead(self)
        return super().acquire_lock()

    def register_death(self) -> None:
        self.lease.release()
        super().register_death()
