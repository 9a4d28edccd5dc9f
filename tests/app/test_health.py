"""/healthz and /readyz in front of the web app: answers, and one readiness check at a time."""

from __future__ import annotations

import asyncio
import types

import orjson

from app.api import health


async def _call(app, path: str) -> tuple[int, dict]:
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    await app({"type": "http", "path": path, "headers": []}, None, send)
    return sent[0]["status"], orjson.loads(sent[1]["body"])


def test_probes_and_a_slow_dependency(monkeypatch) -> None:
    async def inner(scope, receive, send) -> None:
        raise AssertionError("the probes never reach the web app")

    release = asyncio.Event()

    async def slow_readiness(db, client):
        await release.wait()  # a database that does not answer yet
        return 200, {"status": "ready", "problems": []}

    monkeypatch.setattr(health, "readiness", slow_readiness)
    monkeypatch.setattr(health, "get_context", lambda: types.SimpleNamespace(db=None, redis=None))
    app = health.mount_health(inner)

    async def scenario() -> None:
        assert await _call(app, "/healthz") == (200, {"status": "ok"})
        first = asyncio.create_task(_call(app, "/readyz"))
        await asyncio.sleep(0.01)
        # A second probe while the first still waits is answered at once, not queued behind it.
        status, body = await _call(app, "/readyz")
        assert (status, body["problems"]) == (503, ["the previous check has not ended"])
        release.set()
        assert (await first)[0] == 200

    asyncio.run(scenario())
