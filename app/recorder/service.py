"""The recorder loop: read events of every tenant in batches, write them to SQL, then acknowledge them.

Acknowledging only after the transaction committed makes recording at-least-once; the writer's
idempotent identities make it exactly-once in effect. Several recorders may run: each reads with its own
consumer name, and entries a dead recorder held are taken over after `reclaim_idle_ms`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import redis
import sqlalchemy.exc

from app.recorder.events import EventFolder, without_nul
from app.recorder.step_metrics import count_steps
from app.recorder.sweeper import RunSweeper
from app.recorder.writer import WriteResult, write_batch
from app.storage.db import Database
from runtime.bus.events import EventEntry, EventStreams
from runtime.bus.streams import StreamsBus

log = logging.getLogger(__name__)

# Failures of the database itself (down, restarting, locked): keep the events and try again later.
TRANSIENT = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, sqlalchemy.exc.TimeoutError)


@dataclass(frozen=True)
class RecorderConfig:
    name: str
    batch_entries: int = 200
    block_ms: int = 1000
    housekeeping_interval_s: float = 5.0
    reclaim_idle_ms: int = 60_000
    sweep_interval_s: float = 60.0
    sweep_grace_s: float = 120.0


@dataclass
class RecorderStats:
    entries: int = 0
    runs: int = 0
    steps: int = 0
    logs: int = 0
    rejected: int = 0
    swept: int = 0


@dataclass
class Recorder:
    db: Database
    bus: StreamsBus
    config: RecorderConfig
    stats: RecorderStats = field(default_factory=RecorderStats)

    def __post_init__(self) -> None:
        self.events = EventStreams(self.bus.redis)
        self.sweeper = RunSweeper(self.db, self.bus, self.events, grace_s=self.config.sweep_grace_s)
        self._tenants: list[str] = []
        self._next_housekeeping = 0.0
        self._next_sweep = time.monotonic() + self.config.sweep_interval_s
        self._recovered = False

    def run(self, stop: threading.Event) -> None:
        log.info("recorder %s started", self.config.name)
        while not stop.is_set():
            try:
                self.run_once()
            except (redis.RedisError, *TRANSIENT) as exc:
                log.warning("recorder %s: %s; retrying in 2 s", self.config.name, exc)
                self._recovered = False  # the batch in hand stays pending on us: read it again first
                stop.wait(2.0)
        log.info("recorder %s stopped after %d entries", self.config.name, self.stats.entries)

    def run_once(self, block_ms: int | None = None) -> int:
        """Housekeeping when due, then one batch. Returns the number of entries recorded."""
        recorded = 0
        if time.monotonic() >= self._next_housekeeping:
            recorded += self.housekeeping()
            self._next_housekeeping = time.monotonic() + self.config.housekeeping_interval_s
        if not self._tenants:
            time.sleep(min(1.0, self.config.housekeeping_interval_s))
            return recorded
        if not self._recovered:
            # What this consumer was given before a restart comes first.
            recorded += self.record(
                self.events.read(self.config.name, self._tenants, 10_000, None, pending=True)
            )
            self._recovered = True
        block = self.config.block_ms if block_ms is None else block_ms
        entries = self.events.read(self.config.name, self._tenants, self.config.batch_entries, block)
        return recorded + self.record(entries)

    def housekeeping(self) -> int:
        self._tenants = self.bus.tenants()
        recorded = 0
        for tenant in self._tenants:
            recorded += self.record(
                self.events.reclaim(tenant, self.config.name, self.config.reclaim_idle_ms)
            )
        if time.monotonic() >= self._next_sweep:
            self.stats.swept += self.sweeper.sweep()
            self._next_sweep = time.monotonic() + self.config.sweep_interval_s
        return recorded

    def record(self, entries: list[EventEntry]) -> int:
        for entry in [e for e in entries if e.unreadable is not None]:
            self.events.reject(entry, "the entry is not valid JSON")
            self.stats.rejected += 1
        entries = [e for e in entries if e.unreadable is None]
        if not entries:
            return 0
        try:
            self._write(entries)
        except TRANSIENT:
            raise
        except Exception:  # malformed events or rows the database refuses
            if len(entries) == 1:
                return self._record_alone(entries[0])
            # One bad entry must not hold back the others: find it by halves.
            middle = len(entries) // 2
            return self.record(entries[:middle]) + self.record(entries[middle:])
        self.events.ack(entries)
        self.stats.entries += len(entries)
        return len(entries)

    def _record_alone(self, entry: EventEntry) -> int:
        """An entry refused as a whole (it holds the events of many runs): write its events one by one, without
        the NUL characters PostgreSQL refuses, and set aside only those that still fail, so that the other runs
        are recorded and closed."""
        refused: list[tuple[dict, Exception]] = []
        for event in entry.events:
            try:
                self._write([EventEntry(entry.tenant, entry.entry_id, [without_nul(event)])])
            except TRANSIENT:
                raise
            except Exception as exc:
                refused.append((event, exc))
        if refused:
            reason = f"{len(refused)} event(s) refused; first: {refused[0][1]}"
            log.error("recorder: events entry %s of %s: %s", entry.entry_id, entry.tenant, reason)
            self.events.reject(EventEntry(entry.tenant, entry.entry_id, [e for e, _ in refused]), reason)
            self.stats.rejected += len(refused)
        else:
            self.events.ack([entry])
        self.stats.entries += 1
        return 1

    def _write(self, entries: list[EventEntry]) -> WriteResult:
        folder = EventFolder()
        for entry in entries:
            for event in entry.events:
                folder.add(entry.tenant, event)
        result = write_batch(self.db, folder.batch)
        try:
            count_steps(self.bus.redis, result.new_steps)
        except redis.RedisError as exc:  # the records are written: a missed count must not re-record them
            log.warning("recorder: step metrics not counted: %s", exc)
        if folder.batch.skipped or result.ignored_runs:
            log.info(
                "recorder: ignored %d events and %d runs not of this hub's flows",
                folder.batch.skipped,
                result.ignored_runs,
            )
        self.stats.runs += result.runs
        self.stats.steps += result.steps
        self.stats.logs += result.logs
        return result
