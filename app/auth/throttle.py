"""Login attempt limiting in Redis, shared by every web process.

Failures are counted per e-mail and per client address inside a sliding-expiry window; once a limit is hit,
attempts are refused until the window expires, whether the password is right or not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import redis

from app.errors import RateLimitedError

IP_FACTOR = 4  # one address may try several accounts (an office NAT), but not without bound


@dataclass(frozen=True)
class LoginThrottle:
    redis: redis.Redis
    max_failures: int
    window_seconds: int
    prefix: str = "hub:login:fail"

    def _keys(self, email: str, ip: str | None) -> list[tuple[str, int]]:
        digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
        keys = [(f"{self.prefix}:email:{digest}", self.max_failures)]
        if ip:
            keys.append((f"{self.prefix}:ip:{ip}", self.max_failures * IP_FACTOR))
        return keys

    def check(self, email: str, ip: str | None) -> None:
        keys = self._keys(email, ip)
        counts = self.redis.mget([key for key, _ in keys])
        for (key, limit), count in zip(keys, counts, strict=True):
            if count is not None and int(count) >= limit:
                wait = max(int(self.redis.ttl(key)), 1)
                minutes = (wait + 59) // 60
                raise RateLimitedError(
                    f"Too many failed attempts. Try again in {minutes} minute{'s' if minutes > 1 else ''}.",
                    retry_after_seconds=wait,
                )

    def record_failure(self, email: str, ip: str | None) -> None:
        with self.redis.pipeline(transaction=True) as pipe:
            for key, _ in self._keys(email, ip):
                pipe.incr(key)
                pipe.expire(key, self.window_seconds)
            pipe.execute()

    def reset(self, email: str) -> None:
        self.redis.delete(self._keys(email, None)[0][0])
