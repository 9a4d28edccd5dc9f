"""Reading the per-tenant events streams (run.started, step.finished, step.failed, run.finished).

The runtime writes events in the same atomic commit as the work they describe; a consumer (the run recorder)
reads them with its own consumer group, acknowledges them after it has stored them, and so sees every event
at least once even if it dies in between.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from runtime.bus import keys
from runtime.bus.keys import TenantKeys, tenant_of_stream


@dataclass(frozen=True)
class EventEntry:
    tenant: str
    entry_id: str
    events: list[dict[str, Any]]
    unreadable: bytes | None = None  # the raw entry, when it is not JSON: set aside, never a reason to stop


def _entry(tenant: str, entry_id: bytes, fields: dict[bytes, bytes]) -> EventEntry:
    raw = fields.get(b"e")
    if not raw:
        return EventEntry(tenant, entry_id.decode(), [])
    try:
        events = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return EventEntry(tenant, entry_id.decode(), [], unreadable=raw)
    return EventEntry(tenant, entry_id.decode(), events if isinstance(events, list) else [events])


def _entries(stream: str, entries: Iterable[tuple[bytes, dict[bytes, bytes]]]) -> list[EventEntry]:
    tenant = tenant_of_stream(stream)
    return [_entry(tenant, entry_id, fields) for entry_id, fields in entries]


class EventStreams:
    def __init__(self, client: redis.Redis, group: str = keys.RECORDER_GROUP) -> None:
        self.redis = client
        self.group = group

    def read(
        self,
        consumer: str,
        tenants: Iterable[str],
        count: int,
        block_ms: int | None,
        *,
        pending: bool = False,
    ) -> list[EventEntry]:
        """New entries, or with pending=True the ones this consumer was given earlier and never acknowledged."""
        streams = {TenantKeys(t).events: "0" if pending else ">" for t in tenants}
        if not streams:
            return []
        reply = self.redis.xreadgroup(
            self.group, consumer, streams, count=count, block=None if pending else block_ms
        )
        return [entry for stream, entries in reply or [] for entry in _entries(stream.decode(), entries)]

    def reclaim(self, tenant: str, consumer: str, min_idle_ms: int, count: int = 100) -> list[EventEntry]:
        """Take over entries another consumer was given and has not acknowledged for min_idle_ms."""
        stream = TenantKeys(tenant).events
        entries = self.redis.xautoclaim(
            stream, self.group, consumer, min_idle_time=min_idle_ms, start_id="0-0", count=count
        )[1]
        return _entries(stream, entries)

    def ack(self, entries: Iterable[EventEntry]) -> int:
        by_tenant: dict[str, list[str]] = {}
        for entry in entries:
            by_tenant.setdefault(entry.tenant, []).append(entry.entry_id)
        if not by_tenant:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        for tenant, ids in by_tenant.items():
            pipe.xack(TenantKeys(tenant).events, self.group, *ids)
        return sum(pipe.execute())

    def reject(self, entry: EventEntry, reason: str) -> None:
        """Set aside an entry that cannot be stored (kept, capped, for inspection) and acknowledge it, atomically."""
        tk = TenantKeys(entry.tenant)
        pipe = self.redis.pipeline(transaction=True)
        events = entry.unreadable if entry.unreadable is not None else orjson.dumps(entry.events)
        fields = {"e": events, "id": entry.entry_id, "error": reason[:2000]}
        pipe.xadd(tk.rejected_events, fields, maxlen=10_000, approximate=True)
        pipe.xack(tk.events, self.group, entry.entry_id)
        pipe.execute()

    def caught_up(self, tenant: str) -> bool:
        """True when every event added to the tenant's stream so far has been acknowledged by this group."""
        stream = TenantKeys(tenant).events
        pipe = self.redis.pipeline(transaction=True)
        pipe.xinfo_stream(stream)
        pipe.xinfo_groups(stream)
        try:
            info, groups = pipe.execute()
        except redis.ResponseError:  # no stream yet: nothing to record
            return True
        group = next((g for g in groups if _text(g["name"]) == self.group), None)
        if group is None:
            return False
        return group["pending"] == 0 and _text(group["last-delivered-id"]) == _text(info["last-generated-id"])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
