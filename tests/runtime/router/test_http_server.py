"""The standalone router's HTTP/1.1 server over raw sockets: keep-alive, pipelining in order, HTTP/1.0,
`Expect: 100-continue`, chunked bodies, and the limits that protect it."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from runtime.router.app import RouterConfig, WebhookRouter
from runtime.router.server import ServerLimits
from tests.runtime.router.conftest import Hooks
from tests.runtime.router.server import native


@contextmanager
def connect(base_url: str) -> Iterator[socket.socket]:
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    try:
        yield sock
    finally:
        sock.close()


def post(path: str, body: bytes = b'{"a":1}', extra: str = "", version: str = "1.1") -> bytes:
    return (
        f"POST {path} HTTP/{version}\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def read_responses(sock: socket.socket, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    """Parse `count` responses (with Content-Length) from the socket."""
    buffer = b""
    out = []
    while len(out) < count:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed after {len(out)} responses")
            buffer += chunk
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", 0))
        while len(buffer) < length:
            buffer += sock.recv(65536)
        out.append((status, headers, buffer[:length]))
        buffer = buffer[length:]
    return out


@pytest.fixture
def site(hooks: Hooks) -> tuple[Hooks, str]:
    return hooks, f"/hook/{hooks.route().token}"


@pytest.mark.parametrize("hooks", ["native"], indirect=True)
def test_keep_alive_serves_many_requests_on_one_connection(site) -> None:
    hooks, path = site
    with connect(hooks.base_url) as sock:
        for _ in range(3):
            sock.sendall(post(path))
            [(status, headers, body)] = read_responses(sock, 1)
            assert status == 202 and b"run_id" in body
            assert "date" in headers and headers["content-type"] == "application/json"


@pytest.mark.parametrize("hooks", ["native"], indirect=True)
def test_pipelined_requests_are_answered_in_order(site) -> None:
    hooks, path = site
    with connect(hooks.base_url) as sock:
        sock.sendall(post(path) + post("/hook/" + "b" * 43) + post(path, b"not json") + post(path))
        statuses = [status for status, _, _ in read_responses(sock, 4)]
    assert statuses == [202, 404, 400, 202]


@pytest.mark.parametrize("hooks", ["native"], indirect=True)
def test_http_1_0_closes_after_the_answer(site) -> None:
    hooks, path = site
    with connect(hooks.base_url) as sock:
        sock.sendall(post(path, version="1.0"))
        [(status, headers, _)] = read_responses(sock, 1)
        assert status == 202 and headers["connection"] == "close"
        assert sock.recv(10) == b""


@pytest.mark.parametrize("hooks", ["native"], indirect=True)
def test_expect_100_continue_then_the_body(site) -> None:
    hooks, path = site
    body = b'{"big": "' + b"x" * 2000 + b'"}'
    with connect(hooks.base_url) as sock:
        head = post(path, body, "Expect: 100-continue\r\n")[: -len(body)]
        sock.sendall(head)
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        [(status, _, _)] = read_responses(sock, 1)
    assert status == 202


@pytest.mark.parametrize("hooks", ["native"], indirect=True)
def test_a_chunked_body(site) -> None:
    hooks, path = site
    with connect(hooks.base_url) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            'Transfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n2\r\n1}\r\n0\r\n\r\n'.encode()
        )
        [(status, _, _)] = read_responses(sock, 1)
    assert status == 202


@pytest.mark.parametrize("hooks", ["native"], indirect=True)
def test_head_has_no_body(site) -> None:
    hooks, path = site
    with connect(hooks.base_url) as sock:
        sock.sendall(f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode() + post(path))
        data = b""
        deadline = time.monotonic() + 5
        while data.count(b"HTTP/1.1") < 2 and time.monotonic() < deadline:
            data += sock.recv(65536)
    first, second = data.split(b"HTTP/1.1 ", 2)[1:]
    assert first.startswith(b"202") and first.endswith(b"\r\n\r\n")  # headers only
    assert second.startswith(b"202")


@pytest.mark.parametrize("hooks", ["native"], indirect=True)
def test_malformed_requests_get_400_and_the_connection_closes(site) -> None:
    hooks, _ = site
    with connect(hooks.base_url) as sock:
        sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        [(status, headers, body)] = read_responses(sock, 1)
        assert status == 400 and headers["connection"] == "close" and b"malformed" in body


def test_limits_of_headers_body_and_idle_connections(redis_url: str, harness) -> None:
    limits = ServerLimits(max_header_bytes=2048, max_body_bytes=4096, idle_timeout_s=0.2)
    router = WebhookRouter(RouterConfig(redis_url=redis_url))
    with native(router, limits) as base:
        with connect(base) as sock:
            sock.sendall(post("/hook/x", extra=f"X-Big: {'y' * 4000}\r\n"))
            [(status, _, body)] = read_responses(sock, 1)
            assert status == 431 and b"headers_too_large" in body
        with connect(base) as sock:
            sock.sendall(post("/hook/x", b"z" * 5000))
            [(status, _, _)] = read_responses(sock, 1)
            assert status == 413
        with connect(base) as sock:
            sock.sendall(b"POST /hook/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            sock.sendall(b"1000\r\n" + b"z" * 4096 + b"\r\n" + b"1000\r\n" + b"z" * 100)
            [(status, _, _)] = read_responses(sock, 1)
            assert status == 413
        with connect(base) as sock:
            sock.settimeout(10)
            assert sock.recv(10) == b""  # closed by the idle sweep (every 5 s at the most)
