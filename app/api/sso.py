"""Single sign-on's two addresses: `/auth/oidc/login` sends the browser to the identity provider, and
`/auth/oidc/callback` logs the person in (the session cookie) and goes on to the flows, or back to the login page
with the reason."""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from urllib.parse import parse_qs, urlencode

from app.api import notices
from app.api.oauth import cookie, redirect
from app.auth.sso import CALLBACK_PATH, LOGIN_PATH, STATE_TTL_S, SingleSignOn, SsoConfig, SsoError
from app.context import get_context
from app.oauth.provider import ProviderRefused, ProviderUnreachable
from app.state.auth import HOME_ROUTE, LOGIN_ROUTE, SESSION_COOKIE
from runtime.router.app import ASGIApp, Receive, Scope, Send

log = logging.getLogger("hub.sso")
BINDING_COOKIE = "hub_sso_binding"


@functools.cache
def _sso() -> SingleSignOn | None:
    context = get_context()
    config = SsoConfig.from_settings(context.settings)
    return SingleSignOn(context.db, context.redis, config) if config else None


def _header(scope: Scope, name: bytes) -> str | None:
    return next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == name), None)


async def _not_configured(send: Send) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"single sign-on is not configured (HUB_OIDC_ISSUER)"})


async def _failed(send: Send, message: str) -> None:
    handle = await asyncio.to_thread(notices.leave, get_context().redis, message)
    await redirect(send, f"{LOGIN_ROUTE}?{urlencode({'sso_error': handle})}")


async def sso_login(scope: Scope, receive: Receive, send: Send) -> None:
    sso = _sso()
    if sso is None:
        await _not_configured(send)
        return
    binding = secrets.token_urlsafe(24)
    try:
        url = await asyncio.to_thread(sso.begin, binding)
    except (ProviderUnreachable, ProviderRefused) as exc:
        log.warning("single sign-on: %s", exc)  # the details are for the admin, not the login page
        await _failed(send, "The identity provider cannot be reached; try again later.")
        return
    # The callback must come back to this browser: someone else's callback link cannot log it in as them.
    cookie = (
        f"{BINDING_COOKIE}={binding}; Path={CALLBACK_PATH}; Max-Age={STATE_TTL_S}; HttpOnly; SameSite=Lax"
    )
    await redirect(send, url, (cookie,))


async def sso_callback(scope: Scope, receive: Receive, send: Send) -> None:
    sso = _sso()
    if sso is None:
        await _not_configured(send)
        return
    query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
    client = scope.get("client")
    try:
        token = await asyncio.to_thread(
            functools.partial(
                sso.finish,
                state=query.get("state", ""),
                code=query.get("code", ""),
                error=query.get("error_description") or query.get("error", ""),
                binding=cookie(scope, BINDING_COOKIE),
                ip=client[0] if client else None,
                user_agent=_header(scope, b"user-agent"),
            )
        )
    except (SsoError, ProviderUnreachable) as exc:
        await _failed(send, str(exc))
        return
    max_age = sso.config.session_days * 24 * 3600
    session_cookie = f"{SESSION_COOKIE}={token}; Path=/; Max-Age={max_age}; SameSite=Strict"
    spent = f"{BINDING_COOKIE}=; Path={CALLBACK_PATH}; Max-Age=0"
    # A page of our own rather than a redirect: the strict session cookie is sent again only on a navigation
    # that starts on this site, which this is.
    body = f'<!doctype html><meta http-equiv="refresh" content="0;url={HOME_ROUTE}"><a href="{HOME_ROUTE}">Continue</a>'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"set-cookie", session_cookie.encode()),
                (b"set-cookie", spent.encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})


ROUTES = {LOGIN_PATH: sso_login, CALLBACK_PATH: sso_callback}


def mount_sso(inner: ASGIApp) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        handler = ROUTES.get(scope["path"]) if scope["type"] == "http" else None
        if handler is not None:
            await handler(scope, receive, send)
        else:
            await inner(scope, receive, send)

    return app
