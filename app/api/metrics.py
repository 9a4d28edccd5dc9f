"""`/metrics` on the hub's own port in Prometheus format: the coordinator's per-tenant figures, the step
executions the recorder counted, and the webhook figures of the router serving this port.

Tenant names are not for everyone: with HUB_METRICS_TOKEN set, a scraper sends `Authorization: Bearer <token>`;
without it, only clients on this machine (loopback) are answered, and never a request that came through a
proxy (it says so in a Forwarded or X-Forwarded-For header): behind a proxy on the same host every caller
would look local."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress

from app.api.webhooks import router_metrics
from app.context import get_context
from app.services.activity import metrics
from runtime.router.app import ASGIApp, Receive, Scope, Send

PATH = "/metrics"


PROXY_HEADERS = (b"forwarded", b"x-forwarded-for", b"x-real-ip")


def allowed(scope: Scope, token: str) -> bool:
    headers = dict(scope.get("headers") or [])
    if token:
        given = headers.get(b"authorization", b"").decode("latin-1")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    if any(name in headers for name in PROXY_HEADERS):
        return False
    client = scope.get("client")
    try:
        return client is not None and ipaddress.ip_address(client[0]).is_loopback
    except ValueError:
        return False


async def _answer(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]}
    )
    await send({"type": "http.response.body", "body": body})


def mount_metrics(inner: ASGIApp) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await inner(scope, receive, send)
            return
        context = get_context()
        if not allowed(scope, context.settings.metrics_token):
            text = b"metrics need the bearer token (HUB_METRICS_TOKEN), or a client on this machine\n"
            await _answer(send, 403, text, b"text/plain")
            return
        body = await asyncio.to_thread(metrics, context.db, context.redis) + router_metrics()
        await _answer(send, 200, body, b"text/plain; version=0.0.4")

    return app
