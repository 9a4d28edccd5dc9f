"""The REST API, `/api/v1`: the same service functions as the pages, behind API tokens, with an OpenAPI document
at /api/v1/openapi.json. Built with FastAPI and mounted in front of Reflex like the webhooks."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI

from app.api.v1 import problems
from app.api.v1.deps import Hub, refuse_nul
from app.api.v1.routes import components, credentials, flows, runs, templates, webhooks
from app.api.v1.schemas import ErrorBody
from runtime.router.app import ASGIApp, Receive, Scope, Send

PREFIX = "/api/v1"
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
        dependencies=[Depends(refuse_nul)],
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
            await api(scope, receive, send)
        else:
            await inner(scope, receive, send)

    return app
