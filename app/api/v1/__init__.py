"""The REST API, `/api/v1`: the same service functions as the pages, behind API tokens, with an OpenAPI document
at /api/v1/openapi.json. Built with FastAPI and mounted in front of Reflex like the webhooks."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI

from app.api.v1 import problems
from app.api.v1.deps import Hub
from app.api.v1.routes import components, credentials, flows, runs, templates, webhooks
from app.api.v1.schemas import ErrorBody
from runtime.router.app import ASGIApp, Receive, Scope, Send

PREFIX = "/api/v1"
MAX_BODY = 4 * 1024 * 1024  # a flow, a template or a component.json; larger bodies are not ours
OPENAPI = f"{PREFIX}/openapi.json"
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        401: "No token, or one that is unknown, expired or revoked.",
        403: "The token lacks the scope, or the member's role does not allow it.",
        404: "No such object in the token's tenant.",
        422: "The request or the object's state does not allow it; `message` says why.",
    }.items()
}


def create_api(hub: Callable[[], Hub]) -> FastAPI:
    api = FastAPI(
        title="Integration Hub API",
        version="1",
        description=(
            "Flows, runs, components, credentials, webhooks and templates of one tenant: the tenant of the API token. "
            "Send `Authorization: Bearer <token>`; tokens are made on the Settings page with the scopes "
            "read, write and run. Errors are JSON: `{code, message}`."
        ),
        openapi_url=OPENAPI,
        docs_url=None,  # the UIs load scripts from a CDN: not on a hub that may have no internet
        redoc_url=None,
        responses=_ERRORS,
    )
    api.state.hub_provider = hub
    # templates before flows: its /flows/import must win over /flows/{flow_id}.
    for module in (templates, flows, runs, components, credentials, webhooks):
        api.include_router(module.router, prefix=PREFIX)
    problems.install(api)
    api.openapi = functools.partial(_openapi, api)  # type: ignore[method-assign]
    return api


def _openapi(api: FastAPI) -> dict[str, Any]:
    if api.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        document = get_openapi(title=api.title, version=api.version, description=api.description,
                               routes=api.routes)  # fmt: skip
        document.setdefault("components", {})["securitySchemes"] = {
            "token": {"type": "http", "scheme": "bearer", "description": "An API token (hub_pat_...)."}
        }
        document["security"] = [{"token": []}]
        api.openapi_schema = document
    return api.openapi_schema


def mount_api(inner: ASGIApp, hub: Callable[[], Hub]) -> ASGIApp:
    api = create_api(hub)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == PREFIX or path.startswith(PREFIX + "/"):
            await limit_body(api)(scope, receive, send)
        else:
            await inner(scope, receive, send)

    return app


def limit_body(api: ASGIApp, limit: int = MAX_BODY) -> ASGIApp:
    """Bodies up to `limit` bytes, read before the API sees them; a larger one is answered 413 at once (a token
    holder cannot make the hub buffer or store megabytes of template or descriptor)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > limit:
                await _too_large(send, limit)
                return
        body, sent = b"".join(chunks), False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await api(scope, replay, send)

    return app


async def _too_large(send: Send, limit: int) -> None:
    body = orjson.dumps(
        {"code": "too_large", "message": f"The request body is larger than {limit // 1024 // 1024} MB."}
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
