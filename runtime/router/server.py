"""The standalone router's HTTP/1.1 server: httptools' parser on uvloop, the router's ASGI code behind it.

Why not uvicorn: measured here with the same router code, uvicorn spent more per request than the router's own
work (two writes per response, its ASGI cycle objects), and answered ~24k durable requests/s at 64 concurrent
callers where this server answers ~34k. It does only what a webhook endpoint needs, and does it strictly:
keep-alive and pipelining (answers in request order, reading paused past a bound), `Expect: 100-continue`,
chunked bodies (the parser's), limits on header and body size, idle connections closed, one write per answer.
Everything a request means is decided by the router (runtime/router/app.py), the same code the web port runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import httptools

from runtime.router.app import WebhookRouter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerLimits:
    max_header_bytes: int = 64 * 1024
    max_body_bytes: int = (
        51 * 1024 * 1024
    )  # above any webhook's own limit (50 MiB): that one answers 413 first
    max_pipelined: int = 64  # requests of one connection waiting for their answer before reading pauses
    idle_timeout_s: float = 75.0


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Status"
    return f"HTTP/1.1 {status} {phrase}\r\n".encode("latin-1")


STATUS_LINES = {status.value: _status_line(status.value) for status in HTTPStatus}


class _Date:
    """The Date header, formatted once a second rather than once a response."""

    def __init__(self) -> None:
        self._second = 0
        self._value = b""

    def header(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = b"date: " + email.utils.formatdate(now, usegmt=True).encode() + b"\r\n"
        return self._value


class HttpConnection(asyncio.Protocol):
    def __init__(self, app: Callable[..., Any], limits: ServerLimits, date: _Date, connections: set) -> None:
        self.app = app
        self.limits = limits
        self.date = date
        self.connections = connections
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.loop = asyncio.get_running_loop()
        self.last_active = time.monotonic()
        self.closing = False
        self.paused = False
        self.in_flight = 0
        self._previous: asyncio.Future[None] | None = None  # the answer before this one (pipelining order)
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.header_bytes = 0
        self.body: list[bytes] = []
        self.body_bytes = 0

    # -- asyncio.Protocol ------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, b"upgrades are not supported here")
        except httptools.HttpParserError as exc:
            # A limit refused in a callback arrives wrapped in the parser's own error.
            refused = exc.__cause__ or exc.__context__
            if isinstance(refused, _Refused):
                self._fail(refused.status, refused.message)
            else:
                self._fail(400, b"malformed HTTP request")
        except _Refused as refused:
            self._fail(refused.status, refused.message)

    # -- parser callbacks ------------------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._reset()

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.header_bytes += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value) + 4
        if self.header_bytes > self.limits.max_header_bytes:
            raise _Refused(431, b"request headers too large")
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        for name, value in self.headers:
            if name == b"content-length" and value.isdigit() and int(value) > self.limits.max_body_bytes:
                raise _Refused(413, b"the body is too large")
            if name == b"expect" and value.lower() == b"100-continue" and self.transport is not None:
                # The caller waits for this before it sends the body (curl does, for bodies over 1 KiB).
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        if self.body_bytes > self.limits.max_body_bytes:
            raise _Refused(413, b"the body is too large")
        self.body.append(body)

    def on_message_complete(self) -> None:
        path, _, query = self.url.partition(b"?")
        scope = {
            "type": "http",
            "http_version": self.parser.get_http_version(),
            "method": self.parser.get_method().decode("latin-1"),
            "path": path.decode("latin-1"),
            "query_string": query,
            "headers": self.headers,
        }
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        keep_alive = self.parser.should_keep_alive()
        previous, done = self._previous, self.loop.create_future()
        self._previous = done
        self.in_flight += 1
        if self.in_flight >= self.limits.max_pipelined and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self.loop.create_task(self._answer(scope, body, keep_alive, previous, done))

    # -- answering -------------------------------------------------------------------------------------------
    async def _answer(
        self,
        scope: dict[str, Any],
        body: bytes,
        keep_alive: bool,
        previous: asyncio.Future[None] | None,
        done: asyncio.Future[None],
    ) -> None:
        response: list[bytes] = []
        head = scope["method"] == "HEAD"

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                response.append(STATUS_LINES.get(message["status"]) or _status_line(message["status"]))
                for name, value in message.get("headers", ()):
                    if b"\r" in value or b"\n" in value or b"\r" in name or b"\n" in name:
                        continue  # never let a value split the answer
                    response.append(name + b": " + value + b"\r\n")
                response.append(self.date.header())
                if not keep_alive:
                    response.append(b"connection: close\r\n")
                response.append(b"\r\n")
            elif message["type"] == "http.response.body" and not head:
                response.append(message.get("body", b""))

        try:
            await self.app(scope, receive, send)
        except Exception:  # the router answers its own errors; this is a last resort
            log.exception("webhook request failed")
            response = [STATUS_LINES[500], b"content-length: 0\r\nconnection: close\r\n\r\n"]
            keep_alive = False
        try:
            if previous is not None and not previous.done():
                await previous  # answers leave in the order the requests came
            if not self.closing and self.transport is not None:
                self.transport.write(b"".join(response))
                if not keep_alive:
                    self.closing = True
                    self.transport.close()
        finally:
            done.set_result(None)
            self.in_flight -= 1
            if self.paused and self.in_flight < self.limits.max_pipelined // 2 and self.transport is not None:
                self.paused = False
                self.transport.resume_reading()

    def _fail(self, status: int, message: bytes) -> None:
        if self.transport is None or self.closing:
            return
        code = {413: b"too_large", 431: b"headers_too_large"}.get(status, b"bad_request")
        body = b'{"error":"' + code + b'","message":"' + message + b'"}'
        self.transport.write(
            STATUS_LINES[status]
            + b"content-type: application/json\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\nconnection: close\r\n\r\n"
            + body
        )
        self.closing = True
        self.transport.close()

    def close_if_idle(self, now: float) -> None:
        if self.in_flight == 0 and now - self.last_active > self.limits.idle_timeout_s and self.transport:
            self.closing = True
            self.transport.close()


class _Refused(Exception):
    def __init__(self, status: int, message: bytes) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def serve(
    router: WebhookRouter,
    host: str,
    port: int,
    *,
    limits: ServerLimits | None = None,
    ready: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until `stop` is set (or SIGTERM/SIGINT when none is given); in-flight answers are finished."""
    limits = limits or ServerLimits()
    loop = asyncio.get_running_loop()
    connections: set[HttpConnection] = set()
    date = _Date()
    with contextlib.suppress(Exception):  # Redis may come later; requests get 503 meanwhile
        await router.start()
    server = await loop.create_server(
        lambda: HttpConnection(router, limits, date, connections), host, port, reuse_port=True, backlog=2048
    )
    if ready is not None:
        ready(server.sockets[0].getsockname()[1])
    if stop is None:
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)

    async def sweep() -> None:
        while True:
            await asyncio.sleep(5)
            now = time.monotonic()
            for connection in list(connections):
                connection.close_if_idle(now)

    sweeper = loop.create_task(sweep())
    try:
        await stop.wait()
    finally:
        sweeper.cancel()
        server.close()
        deadline = time.monotonic() + 10
        while any(c.in_flight for c in connections) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for connection in list(connections):
            if connection.transport is not None:
                connection.transport.close()
        await router.stop()


def run(router_factory: Callable[[], WebhookRouter], host: str, port: int) -> None:
    """One process: the router on uvloop (asyncio's loop where uvloop is missing)."""
    try:
        import uvloop

        runner: Callable[[Any], Any] = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        runner = asyncio.run
    log.info("router %d listening on %s:%d", os.getpid(), host, port)
    runner(serve(router_factory(), host, port))
