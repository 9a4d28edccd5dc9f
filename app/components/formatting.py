"""How times and durations read on the pages: one format everywhere."""

from __future__ import annotations

import datetime as dt

RUN_COLORS = {"succeeded": "green", "failed": "red", "partially_failed": "orange", "running": "blue",
              "queued": "gray", "cancelled": "gray", "retrying": "amber", "rebound": "amber", "dead": "red"}  # fmt: skip


def when(value: dt.datetime | None, *, seconds: bool = False) -> str:
    if value is None:
        return ""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def duration(ms: float | None) -> str:
    """ "" while unknown (a run still running); else ms, s or min as reads best."""
    if ms is None:
        return ""
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms / 60_000:.1f} min"
