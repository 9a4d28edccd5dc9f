"""The webhook router as a raw ASGI application: `/hook/{token}[/{suffix}]` starts the token's flow.

Kept free of frameworks on purpose: the hot path is parse, look up the cached route, check, hand the request
to the group commit and answer; no SQL, no per-request Redis round trip of its own. Served on the hub's web
port (mounted in front of Reflex) and on its own by `hub router` (uvicorn with httptools and uvloop).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from runtime.bus.envelope import Envelope
from runtime.bus.keys import TenantKeys
from runtime.router import protection
from runtime.router.ingress import Ingress, IngressUnavailable, admission
from runtime.router.metrics import RouterMetrics
from runtime.router.protection import SecretSource, SecretUnavailable, Unauthorized
from runtime.router.replies import Outcome, ReplyWaiter
from runtime.router.request import Attachment, BadRequest, parse_body, trigger_data
from runtime.router.routes import Route, RouteCache, plausible_token

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PREFIX = "/hook/"
START_RETRY_S = 1.0
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9a-z-]{1,100}$")
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})
ALLOW = b", ".join(sorted(m.encode() for m in METHODS))
JSON = (b"content-type", b"application/json")
# Hop-by-hop and framing headers a flow's reply may not set: the server owns them.
RESERVED_REPLY_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade"}
)


@dataclass(frozen=True)
class RouterConfig:
    redis_url: str
    router_id: str = field(default_factory=lambda: os.urandom(8).hex())
    inline_body_limit: int = 64 * 1024
    max_backlog: int = 100_000
    attachment_ttl_s: int = 7 * 86400
    redis_timeout_s: float = 5.0


class Refusal(Exception):
    """Ends a request with a short JSON error; `reason` is counted in the metrics."""

    def __init__(
        self, status: int, reason: str, message: str, headers: list[tuple[bytes, bytes]] | None = None
    ):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.headers = headers or []


def _error_body(reason: str, message: str, run_id: str | None = None) -> bytes:
    doc: dict[str, Any] = {"error": reason, "message": message}
    if run_id:
        doc["run_id"] = run_id
    return orjson.dumps(doc)


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    head: bool = False,
) -> None:
    # A fresh header list per response: servers and middlewares may edit it in place.
    raw = [*(headers or ()), (b"content-length", str(len(body)).encode())]
    if not headers or not any(name == b"content-type" for name, _ in headers):
        raw.append(JSON)
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError("the caller went away")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        if not message.get("more_body"):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        key, text = name.decode("latin-1"), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def _attachments(tk: TenantKeys, run_id: str, files: list[Attachment]) -> tuple[bytes, dict[str, Any]]:
    """All files of a request in one value; each attachment names its byte range in it."""
    refs: dict[str, Any] = {}
    offset = 0
    for file in files:
        name = file.name if file.name not in refs else f"{file.name}_{len(refs)}"
        refs[name] = {
            "ref": tk.attachments(run_id),
            "offset": offset,
            "size": len(file.data),
            "content_type": file.content_type,
        }
        if file.filename is not None:
            refs[name]["filename"] = file.filename
        offset += len(file.data)
    return b"".join(f.data for f in files), refs


class WebhookRouter:
    def __init__(self, config: RouterConfig, secrets: SecretSource | None = None) -> None:
        self.config = config
        self.secrets = secrets
        self.metrics = RouterMetrics()
        self._redis: aioredis.Redis | None = None
        self._listener: aioredis.Redis | None = None
        self._routes: RouteCache | None = None
        self._ingress: Ingress | None = None
        self._replies: ReplyWaiter | None = None
        self._starting: asyncio.Lock | None = None
        self._failed_at = -START_RETRY_S

    # -- life cycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect and subscribe (also done lazily by the first request, for servers without lifespan)."""
        if self._replies is not None:
            return
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._replies is not None:
                return
            if time.monotonic() - self._failed_at < START_RETRY_S:
                # Redis was unreachable a moment ago: answer 503 at once instead of queueing every caller
                # behind another connection attempt.
                raise IngressUnavailable("Redis was unreachable a moment ago")
            client = aioredis.Redis.from_url(
                self.config.redis_url,
                socket_timeout=self.config.redis_timeout_s,
                socket_connect_timeout=self.config.redis_timeout_s,
                max_connections=64,
            )
            # Subscriptions sit idle for long stretches: their connections must not time out on reads.
            listener = aioredis.Redis.from_url(
                self.config.redis_url,
                socket_connect_timeout=self.config.redis_timeout_s,
                socket_keepalive=True,
            )
            routes = RouteCache(client, listener)
            ingress = Ingress(
                client, max_backlog=self.config.max_backlog, attachment_ttl_s=self.config.attachment_ttl_s
            )
            replies = ReplyWaiter(client, listener, self.config.router_id)
            try:
                await replies.start()
            except (TimeoutError, RedisError, OSError) as exc:
                self._failed_at = time.monotonic()
                await replies.stop()
                await client.aclose()
                await listener.aclose()
                raise IngressUnavailable(f"cannot reach Redis: {exc}") from None
            routes.start()
            ingress.start()
            self._redis, self._listener, self._routes, self._ingress = client, listener, routes, ingress
            self._replies = replies

    async def stop(self) -> None:
        for part in (self._ingress, self._routes, self._replies):
            if part is not None:
                await part.stop()
        for client in (self._redis, self._listener):
            if client is not None:
                await client.aclose()
        self._redis = self._listener = self._routes = self._ingress = self._replies = None

    # -- ASGI ------------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path.startswith(PREFIX):
                await self.handle(scope, receive, send)
            elif path == "/healthz":
                await _respond(send, 200, b'{"status":"ok"}')
            elif path == "/readyz":
                await self._ready(send)
            elif path == "/metrics":
                body = self.metrics.exposition()
                await _respond(send, 200, body, [(b"content-type", b"text/plain; version=0.0.4")])
            else:
                await _respond(send, 404, _error_body("not_found", "no such endpoint"))
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _ready(self, send: Send) -> None:
        """Ready when Redis answers: a router that cannot store a request must get none (a load balancer's
        readiness probe takes it out of rotation until Redis is back)."""
        try:
            if self._redis is None:
                raise ConnectionError("not started")
            await asyncio.wait_for(self._redis.ping(), timeout=2.0)
        except (aioredis.RedisError, OSError, TimeoutError) as exc:
            await _respond(send, 503, _error_body("unavailable", f"redis: {type(exc).__name__}"))
            return
        await _respond(send, 200, b'{"status":"ready"}')

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except (
                    IngressUnavailable
                ) as exc:  # not fatal: Redis may come later; requests get 503 meanwhile
                    log.warning("router started without Redis: %s", exc)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        method = scope["method"]
        head = method == "HEAD"
        mode = "async"
        try:
            status, body, headers, mode = await self._handle(scope, receive, method)
        except Refusal as refusal:
            self.metrics.rejected(refusal.reason)
            status, headers = refusal.status, refusal.headers
            body = _error_body(refusal.reason, str(refusal))
        except ConnectionAbortedError:
            return
        except Exception:  # never a stack trace to a caller; the log has it
            log.exception("webhook request failed")
            status, headers = 500, []
            body = _error_body("internal", "the hub could not handle this request")
        try:
            await _respond(send, status, body, headers, head=head)
        except (OSError, RuntimeError) as exc:  # the caller went away, or the server refused the answer
            log.warning("webhook answer %d not sent: %s", status, exc)
            return
        self.metrics.answered(status, mode, time.perf_counter() - started)

    async def _handle(
        self, scope: Scope, receive: Receive, method: str
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]], str]:
        token, _, suffix = scope["path"][len(PREFIX) :].partition("/")
        if method not in METHODS:
            raise Refusal(405, "method", f"method {method} is not accepted", [(b"allow", ALLOW)])
        if not plausible_token(token):
            raise Refusal(404, "not_found", "unknown webhook")
        try:
            if self._replies is None:
                await self.start()
            assert self._routes is not None
            route = self._routes.cached(token) or await self._routes.load(token)
        except (IngressUnavailable, RedisError, OSError):
            raise _unavailable() from None
        if route is None:
            raise Refusal(404, "not_found", "unknown webhook")
        headers = _headers(scope)
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > route.max_body:
            raise _too_large(route.max_body)
        raw_body = await _read_body(receive, route.max_body)
        query = scope.get("query_string", b"")
        suffix = "/" + suffix if suffix else ""
        result, run_id, waiting = await self._checked_admit(route, method, suffix, query, headers, raw_body)
        if result == "E:STALE":
            # The route changed since we cached it: reload it and take the request through every check again
            # (its protection or limit may be what changed).
            assert self._routes is not None
            self._routes.forget(token)
            try:
                reloaded = await self._routes.load(token)
            except (RedisError, OSError):
                raise _unavailable() from None
            if reloaded is None:
                raise Refusal(404, "not_found", "unknown webhook")
            if reloaded.rev == route.rev:
                raise _unavailable("this webhook is being changed; retry in a moment")
            route = reloaded
            result, run_id, waiting = await self._checked_admit(
                route, method, suffix, query, headers, raw_body
            )
            if result == "E:STALE":
                raise _unavailable("this webhook is being changed; retry in a moment")
        return await self._answer(route, result, run_id, waiting)

    async def _checked_admit(
        self, route: Route, method: str, suffix: str, query: bytes, headers: dict[str, str], raw_body: bytes
    ) -> tuple[str, str, asyncio.Future[Outcome] | None]:
        """Size, protection, parsing, admission: everything that depends on the route."""
        if len(raw_body) > route.max_body:
            raise _too_large(route.max_body)
        await self._authorize(route, headers, raw_body)
        try:
            parsed = parse_body(headers.get("content-type", ""), raw_body)
        except BadRequest as exc:
            raise Refusal(400, "bad_request", str(exc)) from None
        if route.auth.type in ("basic", "header"):  # the caller's secret never reaches the run's records
            secret_header = "authorization" if route.auth.type == "basic" else route.auth.header.lower()
            headers = {k: v for k, v in headers.items() if k != secret_header}
        data = trigger_data(method, suffix, query, headers, parsed.body)
        return await self._admit(route, data, parsed.attachments)

    async def _authorize(self, route: Route, headers: dict[str, str], body: bytes) -> None:
        if route.auth.type == "none":
            return
        try:
            if route.secret_values is None and route.auth.secret and self.secrets is not None:
                if time.monotonic() < route.secret_retry_at:
                    raise SecretUnavailable("the secret could not be read a moment ago")
                # Failures are remembered for a second: a flood must not turn into a flood of vault reads.
                route.secret_retry_at = time.monotonic() + 1.0
                route.secret_values = await self.secrets.values(route.tenant, route.auth.secret)
            protection.check(route.auth, route.secret_values, headers, body)
        except Unauthorized as exc:
            extra = [(b"www-authenticate", exc.challenge.encode())] if exc.challenge else []
            raise Refusal(401, "unauthorized", str(exc), extra) from None
        except SecretUnavailable as exc:
            log.warning("webhook %s… of tenant %s: %s", route.token[:6], route.tenant, exc)
            raise _unavailable("this webhook's protection cannot be checked right now") from None
        except Exception:
            log.exception("reading the secret of webhook %s… failed", route.token[:6])
            raise _unavailable("this webhook's protection cannot be checked right now") from None

    async def _admit(
        self, route: Route, data: dict[str, Any], files: list[Attachment]
    ) -> tuple[str, str, asyncio.Future[Outcome] | None]:
        assert self._ingress is not None and self._replies is not None
        run_id = os.urandom(16).hex()
        tk = TenantKeys(route.tenant)
        now = int(time.time() * 1000)
        message: dict[str, Any] = {"data": data}
        blob = b""
        if files:
            blob, message["attachments"] = _attachments(tk, run_id, files)
        encoded = orjson.dumps(message)
        envelope = Envelope(
            route.tenant, route.flow, route.version, run_id, route.step, run_id, created_ms=now
        )
        envelope.test = route.test
        aside = b""
        if len(encoded) > self.config.inline_body_limit:
            envelope.body_ref, aside = tk.body(run_id), encoded
        event = orjson.dumps(
            {"t": "run.started", "run": run_id, "flow": route.flow, "version": route.version, "ts": now,
             "trigger": "webhook", "test": route.test, "replay_of": None}
        )  # fmt: skip
        capture = b""
        if route.test:
            capture = orjson.dumps({"run_id": run_id, "received_ms": now, "request": data,
                                    "attachments": message.get("attachments", {})})  # fmt: skip
        sync = route.mode == "sync"
        part = admission(
            route, run_id, envelope.encode(None if aside else encoded), event, body_aside=aside,
            capture=capture, files=blob, reply_channel=self._replies.channel if sync else "",
        )  # fmt: skip
        # Expect the reply before the run exists: a fast flow may reply before the admission returns.
        waiting = self._replies.expect(run_id) if sync else None
        try:
            result = await self._ingress.admit(part)
        except IngressUnavailable:
            self._replies.forget(run_id)
            raise _unavailable() from None
        if result.startswith("E:"):
            self._replies.forget(run_id)
            waiting = None
        return result, run_id, waiting

    async def _answer(
        self, route: Route, result: str, run_id: str, waiting: asyncio.Future[Outcome] | None
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]], str]:
        if result.startswith("E:"):
            raise _refusal_for(result, route)
        if waiting is None:
            doc = {"run_id": run_id, "test": True} if route.test else {"run_id": run_id}
            return 202, orjson.dumps(doc), [], "async"
        assert self._replies is not None
        outcome = await self._replies.wait(route.tenant, run_id, waiting, route.timeout_ms / 1000)
        if outcome is None:
            self.metrics.rejected("timeout")
            body = _error_body(
                "timeout", f"the flow did not reply within {route.timeout_ms} ms; it goes on", run_id
            )
            return 504, body, [], "sync"
        if outcome.reply is not None:
            return (*_reply_response(outcome.reply, run_id), "sync")
        if outcome.finished == "succeeded":
            return 200, orjson.dumps({"run_id": run_id, "status": "succeeded"}), [], "sync"
        body = _error_body("run_failed", f"the flow ended ({outcome.finished}) before it replied", run_id)
        return 500, body, [], "sync"


def _valid_header(name: str, value: str) -> bool:
    """A header a flow may set: a token name, a value without control characters (no response splitting)."""
    if not HEADER_NAME.match(name):
        return False
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return not any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in value)


def _reply_response(reply: dict[str, Any], run_id: str) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    content = reply.get("body")
    headers = [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in ((str(k).lower(), str(v)) for k, v in (reply.get("headers") or {}).items())
        if name not in RESERVED_REPLY_HEADERS and _valid_header(name, value)
    ]
    has_type = any(name == b"content-type" for name, _ in headers)
    if isinstance(content, str):
        body = content.encode()
        if not has_type:
            headers.append((b"content-type", b"text/plain; charset=utf-8"))
    elif content is None:
        body = b""
    else:
        body = orjson.dumps(content)
    headers.append((b"x-hub-run-id", run_id.encode()))
    return int(reply.get("status") or 200), body, headers


def _too_large(limit: int) -> Refusal:
    return Refusal(413, "too_large", f"the body is larger than this webhook's limit of {limit} bytes")


def _unavailable(message: str = "the hub cannot take this request right now; retry later") -> Refusal:
    return Refusal(503, "unavailable", message, [(b"retry-after", b"1")])


def _refusal_for(result: str, route: Route) -> Refusal:
    if result == "E:GONE":
        return Refusal(404, "not_found", "unknown webhook")
    if result == "E:OFF":
        if route.test:
            return Refusal(
                410, "inactive", "this test URL is not listening: start listening in the designer first"
            )
        return Refusal(410, "inactive", "this flow is not active")
    if result == "E:BACKLOG":
        return Refusal(
            503,
            "backlog_full",
            "this tenant has too much work waiting; retry later",
            [(b"retry-after", b"5")],
        )
    if result.startswith("E:LIMIT:"):
        return Refusal(429, "concurrency_limit", f"{result[8:]}; retry later", [(b"retry-after", b"1")])
    if result.startswith("E:LIMITFAIL:"):
        return Refusal(429, "concurrency_limit", f"the run failed: {result[12:]}", [(b"retry-after", b"1")])
    if result.startswith("E:RATE:"):
        wait_s = max(1, -(-int(result[7:]) // 1000))
        return Refusal(
            429, "rate_limited", "too many requests to this webhook", [(b"retry-after", str(wait_s).encode())]
        )
    return _unavailable()


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
