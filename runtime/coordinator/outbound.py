"""A tenant's quota of outbound HTTP requests per second, shared by every worker (GCRA on Redis's clock, like
the webhook limits). The built-in steps that call out (HTTP request, HTTP polling) ask before each request:
within the quota it goes at once; a wait of up to `max_wait_s` is waited (the tenant's fair share bounds how
many workers it can hold so); a longer one rebounds the message, at a spread-out time, so that a burst does
not come back all at once. A request counts once, not again for its redirects. Components in their own runners (processes, containers) make their calls themselves and are not
counted: that would take an egress proxy."""

from __future__ import annotations

import random
import time

import redis

from runtime.bus.keys import TenantKeys
from runtime.steps.errors import Rebound

# KEYS: 1 rate key. ARGV: 1 interval (ms), 2 tolerance (ms). Returns 0 (go: counted) or how long to wait (ms).
PACE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - tonumber(ARGV[2]) - now
if wait > 0 then return math.ceil(wait) end
local nxt = tat + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.3f', nxt), 'PX', math.ceil(nxt - now) + 1000)
return 0
"""


class OutboundPacer:
    def __init__(self, client: redis.Redis, tenant: str, rps: int, max_wait_s: float = 5.0) -> None:
        self.rps = rps
        self.max_wait_s = max_wait_s
        self._key = TenantKeys(tenant).rate("outbound")
        self._interval = 1000.0 / rps
        self._tolerance = self._interval * (max(rps, 1) - 1)  # a second's worth at once
        self._pace = client.register_script(PACE)

    def __call__(self) -> None:
        waited = 0.0
        while True:
            wait_s = int(self._pace(keys=[self._key], args=[self._interval, self._tolerance])) / 1000
            if wait_s <= 0:
                return
            if waited + wait_s > self.max_wait_s:
                spread = wait_s * (1 + random.random())  # noqa: S311 - spreading retries, not security
                raise Rebound(
                    f"the tenant's quota of {self.rps} outbound requests per second is used up",
                    max(1.0, spread),
                )
            time.sleep(wait_s)
            waited += wait_s
