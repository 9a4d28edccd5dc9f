"""What a control job works with. A worker process serves its control queue inside `serving(context)`; a job
finds the context with `current()`. Tests build one around an in-process runtime."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from app.services.flows import ImageCheck
from app.services.retention import RetentionPolicy
from app.services.webhooks import NO_DEFAULTS, RouteDefaults
from app.storage.db import Database
from runtime.bus.streams import StreamsBus
from runtime.components.spec import ComponentResolver
from runtime.coordinator.quotas import TenantQuota
from runtime.executors.warm import WarmSet


@dataclass(frozen=True)
class ControlContext:
    db: Database
    bus: StreamsBus
    components_for: Callable[[uuid.UUID], ComponentResolver]
    executors: Mapping[str, Any]  # this worker's executors: the runners a job starts are this worker's
    routes: RouteDefaults = NO_DEFAULTS
    images: ImageCheck | None = None  # the docker executor's check of an image (None without one)
    quotas: TenantQuota = field(default_factory=TenantQuota)  # what a tenant that set none gets
    retention: RetentionPolicy = field(
        default_factory=lambda: RetentionPolicy(days=30, runs=0)
    )  # set none: kept

    @property
    def warm(self) -> WarmSet:
        return WarmSet(self.bus.redis)


_current: ContextVar[ControlContext] = ContextVar("hub_control_context")


class NoControlContext(RuntimeError):
    """A control job ran outside a worker that serves the control queue."""


@contextlib.contextmanager
def serving(context: ControlContext) -> Iterator[ControlContext]:
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def current() -> ControlContext:
    try:
        return _current.get()
    except LookupError:
        raise NoControlContext(
            "control jobs run in `hub worker`, which serves the control queue; this process does not"
        ) from None
