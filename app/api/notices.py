"""Messages handed from a redirect to the page it lands on (a failed Connect, a refused sign-in).

The URL carries only a random key, never the text: a crafted link cannot make the hub's own page show words of
someone else's choosing, and provider details stay out of proxies' logs and the browser's history."""

from __future__ import annotations

import secrets

import redis

from app import one_time

TTL_S = 300


def _key(handle: str) -> str:
    return f"hub:notice:{handle}"


def leave(redis_client: redis.Redis, text: str) -> str:
    handle = secrets.token_urlsafe(16)
    redis_client.set(_key(handle), text.encode(), ex=TTL_S)
    return handle


def take(redis_client: redis.Redis, handle: str) -> str:
    """The message left under `handle`, once; "" for an unknown or expired one."""
    if not handle or len(handle) > 64:
        return ""
    found = one_time.take(redis_client, _key(handle))
    return found.decode() if found else ""
