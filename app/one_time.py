"""Values kept in Redis for a short while and read at most once: the state of an OAuth2 Connect or a single
sign-on between leaving for the provider and coming back, and messages handed from a redirect to a page.
Reading one deletes it in the same step, so a state or a message cannot be used twice."""

from __future__ import annotations

import redis


def take(redis_client: redis.Redis, key: str) -> bytes | None:
    """The value under `key`, removed as it is read; None when there is none (never was, expired, taken)."""
    with redis_client.pipeline(transaction=True) as pipe:
        pipe.get(key)
        pipe.delete(key)
        found, _ = pipe.execute()
    return found
