"""Webhook routes: the document that maps a URL token to a flow, kept in Redis so routers need no SQL.

A route has two keys. The *document* (`hub:hook:<token>`, global, since a caller's URL names no tenant) says
where the request goes and how it is checked; routers cache it. The *state* (`hub:{tenant}:hook:<token>`,
`<revision>:<flag>`) says whether the route exists and accepts requests right now; the ingress script reads it
atomically with the write it makes, so a rotated, revoked or deactivated URL stops on every router at once,
cache or not. A changed document gets a new revision: a router holding the old one is told STALE and reloads.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
import redis
import redis.asyncio as aioredis

from runtime.bus import keys
from runtime.bus.keys import TenantKeys
from runtime.bus.streams import StreamsBus
from runtime.router.subscription import Subscription

TOKEN_BYTES = 32  # 256 bits: unguessable
ACCEPTING = "1"
TOMBSTONE = "x"  # a removed route's state: refused by the ingress script and by every later put
TOMBSTONE_SECONDS = 90 * 86400
STOPPED = "0"
AUTH_TYPES = ("none", "basic", "header", "hmac")
MODES = ("async", "sync")


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def plausible_token(token: str) -> bool:
    """Cheap shape check before any Redis lookup: 43 URL-safe base64 characters."""
    return len(token) == 43 and token.replace("-", "a").replace("_", "a").isalnum()


@dataclass(slots=True)
class HookAuth:
    """How callers prove who they are. `secret` names a vault credential; its values are resolved by the
    router through a SecretSource and never stored in the route."""

    type: str = "none"  # none | basic | header | hmac
    secret: str | None = None
    header: str = ""  # header: the token's header; hmac: the signature's header
    algorithm: str = "sha256"  # hmac: sha256 | sha1
    encoding: str = "hex"  # hmac: hex | base64
    prefix: str = ""  # hmac: text before the digest in the header, e.g. "sha256="
    timestamp_header: str = ""  # hmac: when set, the signed text is "<timestamp>.<body>"
    tolerance_s: int = 300  # hmac with timestamp: older or newer requests are refused (replay)


@dataclass(slots=True)
class Route:
    token: str
    tenant: str
    flow: str
    version: str
    step: str  # the trigger node the run starts at
    rev: int = 1
    kind: str = "production"  # production | test
    mode: str = "async"  # async: 202 at once; sync: wait for the flow's Reply step
    timeout_ms: int = 30_000
    max_body: int = 5 * 1024 * 1024
    flow_rps: float = 0.0  # 0: no limit
    flow_burst: int = 0
    tenant_rps: float = 0.0
    tenant_burst: int = 0
    max_backlog: int = 0  # the tenant's backlog quota; 0: the router's default
    limited: bool = False  # the flow has a concurrency limit (its limit hash is checked with each request)
    auth: HookAuth = field(default_factory=HookAuth)
    # Resolved secret values (filled in by the router, never serialised), and when to try again after a failure.
    secret_values: dict[str, str] | None = None
    secret_retry_at: float = 0.0

    @property
    def test(self) -> bool:
        return self.kind == "test"

    def to_document(self) -> bytes:
        doc = asdict(self)
        doc.pop("token")
        doc.pop("secret_values")
        doc.pop("secret_retry_at")
        return orjson.dumps(doc)

    @classmethod
    def from_document(cls, token: str, raw: bytes | str) -> Route:
        doc = orjson.loads(raw)
        auth = HookAuth(**doc.pop("auth", None) or {})
        doc.pop("secret_values", None)
        doc.pop("secret_retry_at", None)
        return cls(token=token, auth=auth, **doc)


# The writes below can race (two people saving at once, a publish beside an activation): a revision counter
# orders them, and the document and the state only ever move forward, so every router converges on the newest.
_PUT_DOCUMENT = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, doc = pcall(cjson.decode, current)
  if ok and tonumber(doc.rev) and tonumber(doc.rev) > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""
# ARGV: 1 revision, 2 flag ('' keeps the current one; a new route starts off)
_PUT_STATE = """
local current = redis.call('GET', KEYS[1])
local flag = ARGV[2]
if current == 'x' then return 0 end
if current then
  local rev, old = string.match(current, '^(%d+):(%d+)$')
  if tonumber(rev) > tonumber(ARGV[1]) then return 0 end
  if flag == '' then flag = old end
end
if flag == '' then flag = '0' end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. flag)
return 1
"""
_SET_FLAG = """
local current = redis.call('GET', KEYS[1])
if not current or current == 'x' then return 0 end
redis.call('SET', KEYS[1], string.match(current, '^(%d+):') .. ':' .. ARGV[1])
return 1
"""


class RouteRegistry:
    """The writing side, used by the hub's services (synchronous Redis client)."""

    def __init__(self, bus: StreamsBus) -> None:
        self.bus = bus
        self.redis: redis.Redis = bus.redis
        self._put_document = self.redis.register_script(_PUT_DOCUMENT)
        self._put_state = self.redis.register_script(_PUT_STATE)
        self._set_flag = self.redis.register_script(_SET_FLAG)

    def put(self, route: Route, *, accepting: bool | None = None) -> Route:
        """Store the route under a new revision (set on `route`); `accepting` None keeps the current flag."""
        tk = self.bus.ensure_tenant(route.tenant)  # workers must know the tenant before its first request
        route.rev = int(self.redis.incr(tk.hook_revision(route.token)))
        self._put_document(keys=[keys.hook_route(route.token)], args=[route.to_document(), route.rev])
        flag = "" if accepting is None else ACCEPTING if accepting else STOPPED
        self._put_state(keys=[tk.hook_state(route.token)], args=[route.rev, flag])
        self.redis.publish(keys.HOOK_CHANGES, route.token)
        return route

    def set_accepting(self, tenant: str, token: str, accepting: bool) -> bool:
        """False when the route does not exist."""
        flag = ACCEPTING if accepting else STOPPED
        return bool(self._set_flag(keys=[TenantKeys(tenant).hook_state(token)], args=[flag]))

    def listen(self, tenant: str, token: str, until_ms: int) -> bool:
        """Arm a test URL: it accepts one request until `until_ms` (then it is off again)."""
        return bool(self._set_flag(keys=[TenantKeys(tenant).hook_state(token)], args=[str(until_ms)]))

    def remove(self, tenant: str, token: str) -> None:
        """For good: the state becomes a tombstone that no later (racing) put can bring back to life."""
        tk = TenantKeys(tenant)
        # The state first: from this moment every router refuses the token, cached or not.
        self.redis.set(tk.hook_state(token), TOMBSTONE, ex=TOMBSTONE_SECONDS)
        self.redis.delete(keys.hook_route(token))
        self.redis.delete(tk.hook_revision(token))
        self.redis.publish(keys.HOOK_CHANGES, token)

    def get(self, token: str) -> Route | None:
        raw = self.redis.get(keys.hook_route(token))
        return Route.from_document(token, raw) if raw else None

    def state(self, tenant: str, token: str) -> str | None:
        raw = self.redis.get(TenantKeys(tenant).hook_state(token))
        return raw.decode() if raw else None

    def captured(self, tenant: str, flow: str) -> dict[str, Any] | None:
        raw = self.redis.get(TenantKeys(tenant).hook_capture(flow))
        return orjson.loads(raw) if raw else None

    def clear_capture(self, tenant: str, flow: str) -> None:
        self.redis.delete(TenantKeys(tenant).hook_capture(flow))


class RouteCache:
    """The router's side: token -> Route, loaded on first use, dropped when the hub announces a change.

    Correctness never depends on the cache being fresh (the ingress script checks the state), only speed does:
    a missed announcement costs one STALE answer and a reload."""

    def __init__(self, client: aioredis.Redis, listener: aioredis.Redis, max_entries: int = 100_000) -> None:
        self.redis = client
        self.max_entries = max_entries
        self._routes: dict[str, Route] = {}
        # Announcements missed while (re)connecting: everything is dropped on (re)subscription, reloaded on demand.
        self._announcements = Subscription(
            listener, keys.HOOK_CHANGES, self._changed, self._routes.clear, "route announcements"
        )

    def start(self) -> None:
        self._announcements.start()

    async def stop(self) -> None:
        await self._announcements.stop()

    def cached(self, token: str) -> Route | None:
        return self._routes.get(token)

    async def load(self, token: str) -> Route | None:
        raw = await self.redis.get(keys.hook_route(token))
        if raw is None:
            self._routes.pop(token, None)
            return None
        route = Route.from_document(token, raw)
        if len(self._routes) >= self.max_entries:
            self._routes.clear()  # crude, but bounded; a reload costs one GET per route
        self._routes[token] = route
        return route

    def forget(self, token: str) -> None:
        self._routes.pop(token, None)

    def _changed(self, token: bytes) -> None:
        self._routes.pop(token.decode(), None)
