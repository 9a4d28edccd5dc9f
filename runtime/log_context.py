"""The ids a log line is about (tenant, flow, run, step), bound while a step is processed, so that every line
logged meanwhile carries them without each call spelling them out. The hub's JSON log format reads them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_bound: ContextVar[dict[str, str]] = ContextVar("hub_log_ids", default={})  # noqa: B039  # never mutated


@contextmanager
def bound(**ids: str | None) -> Iterator[None]:
    token = _bound.set({**_bound.get(), **{k: v for k, v in ids.items() if v}})
    try:
        yield
    finally:
        _bound.reset(token)


def current() -> dict[str, str]:
    return _bound.get()
