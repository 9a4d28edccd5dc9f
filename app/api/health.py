"""`/healthz` (the process answers) and `/readyz` (it can do its work: Redis and the database answer) on the
hub's own port, for load balancers and Kubernetes probes. Neither needs a login, and neither says more than
which dependency is down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson
import redis
import sqlalchemy as sa

from app.context import get_context
from app.storage.db import Database
from runtime.router.app import ASGIApp, Receive, Scope, Send

HEALTH, READY = "/healthz", "/readyz"
CHECK_TIMEOUT_S = 2.0


def check_redis(client: redis.Redis) -> str | None:
    """None when Redis answers; else why not."""
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"redis: {type(exc).__name__}"
    return None


def check_database(db: Database) -> str | None:
    try:
        with db.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        return f"database: {type(exc).__name__}"
    return None


async def _timed(name: str, check: Callable[[], str | None]) -> str | None:
    try:
        return await asyncio.wait_for(asyncio.to_thread(check), CHECK_TIMEOUT_S)
    except TimeoutError:
        return f"{name}: no answer within {CHECK_TIMEOUT_S} s"


async def readiness(db: Database, client: redis.Redis) -> tuple[int, dict]:
    started = time.perf_counter()
    problems = await asyncio.gather(
        _timed("redis", lambda: check_redis(client)), _timed("database", lambda: check_database(db))
    )
    failed = [p for p in problems if p]
    body = {"status": "unavailable" if failed else "ready", "problems": failed,
            "ms": round((time.perf_counter() - started) * 1000, 1)}  # fmt: skip
    return (503 if failed else 200), body


async def _answer(send: Send, status: int, body: dict) -> None:
    headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": orjson.dumps(body)})


def mount_health(inner: ASGIApp) -> ASGIApp:
    checking = asyncio.Lock()  # one check at a time: probes of a hanging dependency must not pile up threads

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in (HEALTH, READY):
            await inner(scope, receive, send)
        elif scope["path"] == HEALTH:
            await _answer(send, 200, {"status": "ok"})
        elif checking.locked():
            await _answer(
                send, 503, {"status": "unavailable", "problems": ["the previous check has not ended"]}
            )
        else:
            context = get_context()
            async with checking:
                status, body = await readiness(context.db, context.redis)
            await _answer(send, status, body)

    return app
