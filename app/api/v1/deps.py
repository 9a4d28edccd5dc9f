"""What every API route needs: the hub's shared objects and the caller, checked for scope and role.

The order of the checks is the answer a caller gets: no token or a dead one is 401, a token without the scope or a
role that may not do it is 403, and only then is the object looked up (404 for another tenant's id, exactly as for
an id that never existed)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import redis
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from app.errors import AuthenticationError, PermissionDeniedError, ValidationError
from app.services import api_tokens
from app.services.api_tokens import Principal, Scope
from app.services.members import EDITORS
from app.services.webhooks import RouteDefaults
from app.storage.db import Database
from app.vault.store import Vault
from runtime.bus.streams import StreamsBus
from runtime.components.spec import ComponentResolver


@dataclass(frozen=True)
class Hub:
    """The shared objects the routes hand to the services (the web app's HubContext in production)."""

    db: Database
    redis: redis.Redis
    bus: StreamsBus
    vault: Vault
    routes: RouteDefaults
    components_for: Callable[[uuid.UUID], ComponentResolver]
    enqueue: Callable[[uuid.UUID, uuid.UUID, uuid.UUID | None], None]
    base_url: str


@dataclass(frozen=True)
class Caller:
    hub: Hub
    principal: Principal

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.principal.tenant_id

    @property
    def user_id(self) -> uuid.UUID:
        return self.principal.user_id

    @property
    def components(self) -> ComponentResolver:
        return self.hub.components_for(self.tenant_id)


_LONG_NUMBER = re.compile(rb"\d{19,}")
_INT64 = (-(2**63), 2**63 - 1)


def _unstorable(value: Any) -> str | None:
    """What in a decoded body the hub cannot store: a NUL character, an integer beyond 64 bits."""
    if isinstance(value, str):
        return "the NUL character (\\u0000)" if "\x00" in value else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return "an integer beyond 64 bits" if not _INT64[0] <= value <= _INT64[1] else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _unstorable(key) or _unstorable(item)
        if found:
            return found
    return None


async def _refuse_unstorable(request: Request) -> None:
    """PostgreSQL stores no NUL character, and the hub's JSON encoder no integer beyond 64 bits: refused here
    with a clear message, for every route, instead of an error deep in a service. The body is decoded for this
    only when its bytes may hold one."""
    if "%00" in request.url.query:
        raise ValidationError("Text in a request may not contain the NUL character (\\u0000).")
    body = await request.body()
    if b"\x00" in body:
        raise ValidationError("Text in a request may not contain the NUL character (\\u0000).")
    if b"\\u0000" in body or _LONG_NUMBER.search(body):
        try:
            found = _unstorable(json.loads(body))
        except ValueError:
            return  # not JSON: the body's validation refuses it
        if found:
            raise ValidationError(f"A request may not contain {found}.")


def hub_of(request: Request) -> Hub:
    return request.app.state.hub_provider()


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError(api_tokens.REFUSED)
    return token.strip()


def _caller(scope: Scope, roles: tuple[Any, ...] | None) -> Callable[[Request], Awaitable[Caller]]:
    async def resolve(request: Request) -> Caller:
        hub = hub_of(request)
        principal = await run_in_threadpool(api_tokens.authenticate, hub.db, _bearer(request))
        if scope.value not in principal.scopes:
            raise PermissionDeniedError(
                f"This token lacks the {scope.value!r} scope; make a token with it on the API tokens page."
            )
        if roles is not None and principal.role not in roles:
            raise PermissionDeniedError(
                f"Your role here ({principal.role.value}) cannot do this; it needs "
                f"{' or '.join(r.value for r in roles)}."
            )
        await _refuse_unstorable(request)  # after the caller is known: a stranger gets 401 whatever they sent
        return Caller(hub=hub, principal=principal)

    return resolve


# Route parameters: `reader: Reader` in a GET, `editor: Writer` in a change, `runner: Runner` to start runs.
Reader = Annotated[Caller, Depends(_caller(Scope.READ, None))]
Writer = Annotated[Caller, Depends(_caller(Scope.WRITE, EDITORS))]
Runner = Annotated[Caller, Depends(_caller(Scope.RUN, EDITORS))]
# Reading what only editors see in the UI too (webhook URLs: whoever has one can start the flow).
EditorReader = Annotated[Caller, Depends(_caller(Scope.READ, EDITORS))]
