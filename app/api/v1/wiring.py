"""The API's shared objects in the web process: the hub's context, read once."""

from __future__ import annotations

import functools

from app.api.v1.deps import Hub
from app.context import get_context
from app.control.flow_jobs import enqueue_converge


@functools.cache
def hub_from_context() -> Hub:
    ctx = get_context()
    return Hub(db=ctx.db, redis=ctx.redis, bus=ctx.bus, vault=ctx.vault, routes=ctx.routes,
               components_for=ctx.components_for, enqueue=enqueue_converge(ctx.redis),
               base_url=ctx.settings.effective_public_base_url)  # fmt: skip
