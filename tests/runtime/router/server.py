"""A webhook router served in a thread on a free port of 127.0.0.1: by the router's own HTTP server (what
`hub router` runs) or by uvicorn (the ASGI path, as the web port serves it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from runtime.router.app import ASGIApp, WebhookRouter
from runtime.router.server import ServerLimits
from runtime.router.server import serve as serve_native
from tests.http_server import free_port


@contextmanager
def serve(app: ASGIApp, server: str = "native", **config: Any) -> Iterator[str]:
    if server == "native" and isinstance(app, WebhookRouter):
        with native(app, **config) as url:
            yield url
        return
    with asgi(app, **config) as url:
        yield url


@contextmanager
def native(router: WebhookRouter, limits: ServerLimits | None = None) -> Iterator[str]:
    import asyncio

    started = threading.Event()
    state: dict[str, Any] = {}

    def main() -> None:
        async def go() -> None:
            state["loop"], state["stop"] = asyncio.get_running_loop(), asyncio.Event()

            def ready(port: int) -> None:
                state["port"] = port
                started.set()

            await serve_native(router, "127.0.0.1", 0, limits=limits, ready=ready, stop=state["stop"])

        asyncio.run(go())

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the router did not start")
    try:
        yield f"http://127.0.0.1:{state['port']}"
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(15)


@contextmanager
def asgi(app: ASGIApp, **config: Any) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, http="httptools", log_level="warning", lifespan="on", **config
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the router did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def running(worker: Any) -> Iterator[None]:
    """A worker taking steps in a background thread (synchronous webhooks need one while the test waits)."""
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)
