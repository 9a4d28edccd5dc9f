"""A real HTTP server on 127.0.0.1 for tests, with a few behaviours selected by path."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Handler(BaseHTTPRequestHandler):
    server: LocalHTTPServer

    def log_message(self, *_args: object) -> None:
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: object, content_type: str = "application/json") -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _handle(self) -> None:
        url = urlparse(self.path)
        self.server.hits[url.path] += 1
        hits = self.server.hits[url.path]
        body = self._body()
        if url.path == "/echo":
            self._send(
                200,
                {
                    "method": self.command,
                    "query": {k: v[0] for k, v in parse_qs(url.query).items()},
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode(),
                },
            )
        elif url.path == "/flaky":
            self._send(503, {"error": "busy"}) if hits <= 2 else self._send(200, {"ok": True, "hits": hits})
        elif url.path == "/missing":
            self._send(404, {"error": "no such thing"})
        elif url.path == "/slow":
            time.sleep(1.0)
            self._send(200, {"slow": True})
        elif url.path == "/items":
            self._send(200, {"data": {"items": self.server.items}})
        elif url.path == "/redirect":
            target = parse_qs(url.query)["to"][0]
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif url.path == "/text":
            self._send(200, b"plain words", "text/plain")
        else:
            self._send(500, {"error": "unexpected path"})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class LocalHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hits: Counter[str] = Counter()
        self.items: list = []  # what /items answers
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> LocalHTTPServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.shutdown()
        self.server_close()
