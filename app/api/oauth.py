"""Where an OAuth2 provider sends the browser back after Connect (`/oauth/callback`): the code becomes a stored
connection and the browser goes on to the Credentials page, which says what happened."""

from __future__ import annotations

import asyncio
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlencode

from app.api import notices
from app.context import get_context
from app.errors import HubError
from app.oauth.connect import CALLBACK_PATH, finish_connect
from runtime.router.app import ASGIApp, Receive, Scope, Send

BINDING_COOKIE = "hub_oauth_binding"
CREDENTIALS_PAGE = "/credentials"


def cookie(scope: Scope, name: str) -> str:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            jar.load(value.decode("latin-1"))
            if name in jar:
                return jar[name].value
    return ""


async def redirect(send: Send, location: str, cookies: tuple[str, ...] = ()) -> None:
    headers = [(b"location", location.encode()), (b"cache-control", b"no-store")]
    headers += [(b"set-cookie", cookie.encode()) for cookie in cookies]
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def oauth_callback(scope: Scope, receive: Receive, send: Send) -> None:
    query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
    context = get_context()
    try:
        done = await asyncio.to_thread(
            finish_connect,
            context.db,
            context.vault,
            context.redis,
            state=query.get("state", ""),
            code=query.get("code", ""),
            error=query.get("error", ""),
            error_description=query.get("error_description", ""),
            binding=cookie(scope, BINDING_COOKIE),
            changes=context.bus,
            egress=context.egress,
        )
    except HubError as exc:  # ConnectError, VaultError, a role that changed meanwhile
        handle = await asyncio.to_thread(notices.leave, context.redis, str(exc))
        await redirect(send, f"{CREDENTIALS_PAGE}?{urlencode({'connect_error': handle})}")
        return
    await redirect(send, f"{CREDENTIALS_PAGE}?{urlencode({'connected': str(done.credential_id)})}")


def mount_oauth(inner: ASGIApp) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == CALLBACK_PATH:
            await oauth_callback(scope, receive, send)
        else:
            await inner(scope, receive, send)

    return app
