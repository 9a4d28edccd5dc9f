"""The streams bus: start runs, read step messages, commit their effects, delay, reclaim, trim, dead letters.

One stream of step messages per flow (a queue: the fair-share reader in runtime/coordinator/ chooses between
tenants and between a tenant's flows without touching an envelope), read by the consumer group "workers"; one
events stream per tenant, read by the run recorder.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
from redis.exceptions import NoScriptError

from runtime.bus import keys
from runtime.bus.envelope import Envelope
from runtime.bus.keys import TenantKeys
from runtime.bus.scripts import ADOPT, COMMIT, PROMOTE, RELEASE_WAITING, RETIRE, START

DEFAULT_INLINE_BODY_LIMIT = 64 * 1024
DEFAULT_MAX_BACKLOG = 100_000


class DeadLetterGoneError(KeyError):
    """The dead letter was replayed or discarded already."""


class BacklogFullError(Exception):
    """The tenant's backlog is at its quota: the caller should answer 429/503 and try later. Nothing was
    written."""


class ConcurrencyLimitError(Exception):
    """The flow is at its limit of runs at once and skips new runs when so: nothing was written."""


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Delivery:
    """A step message handed to this worker: where it came from and how often it was delivered."""

    stream: str
    entry_id: str
    envelope: Envelope
    deliveries: int = 1


def deliveries(queue: str, entries: list[Any]) -> list[Delivery]:
    return [
        Delivery(queue, entry_id.decode(), Envelope.decode(fields[b"m"]))
        for entry_id, fields in entries
        if fields  # an entry trimmed while pending comes back empty
    ]


@dataclass
class DeadLetter:
    entry_id: str
    envelope: Envelope
    error: str
    failed_at_ms: int
    body: dict[str, Any] | None = None


def _dead_letter(entry_id: bytes, fields: dict[bytes, bytes]) -> DeadLetter:
    doc = orjson.loads(fields[b"m"])
    return DeadLetter(
        entry_id=entry_id.decode(),
        envelope=Envelope.decode(orjson.dumps(doc["env"])),
        error=doc["error"],
        failed_at_ms=doc["at"],
        body=doc.get("body"),
    )


@dataclass
class CommitBatch:
    """The effects of processing a batch of messages of one queue (a flow's stream), committed at once."""

    tenant_keys: TenantKeys
    queue: str
    ops: list[dict[str, Any]] = field(default_factory=list)
    extra_keys: list[str] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict)

    FIXED = 7  # queue, events, delayed, dead, backlog, queues, ready

    def key(self, name: str) -> int:
        """The 1-based KEYS index of a dynamic key, registering it on first use."""
        if name not in self._index:
            self.extra_keys.append(name)
            self._index[name] = self.FIXED + len(self.extra_keys)
        return self._index[name]

    def add(self, op: dict[str, Any]) -> None:
        self.ops.append(op)


class StreamsBus:
    def __init__(
        self,
        client: redis.Redis,
        *,
        inline_body_limit: int = DEFAULT_INLINE_BODY_LIMIT,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
    ) -> None:
        self.redis = client
        self.inline_body_limit = inline_body_limit
        self.max_backlog = max_backlog
        self._commit = client.register_script(COMMIT)
        self._start = client.register_script(START)
        self._promote = client.register_script(PROMOTE)
        self._retire = client.register_script(RETIRE)
        self._release = client.register_script(RELEASE_WAITING)
        self._adopt = client.register_script(ADOPT)
        self._known_tenants: set[str] = set()

    # -- tenants -------------------------------------------------------------------------------------
    def ensure_tenant(self, tenant: str) -> TenantKeys:
        tk = TenantKeys(tenant)
        if tenant in self._known_tenants:
            return tk
        try:
            # Id 0: events added before the group existed are still delivered. (Step queues get their group
            # from the script that first writes to them.)
            self.redis.xgroup_create(tk.events, keys.RECORDER_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self.redis.sadd(keys.TENANTS, tenant)
        self._known_tenants.add(tenant)
        return tk

    def tenants(self) -> list[str]:
        return sorted(t.decode() for t in self.redis.smembers(keys.TENANTS))

    # -- flow versions ----------------------------------------------------------------------------------
    def set_flow_limit(self, tenant: str, flow_id: str, limit: int | None, mode: str = "queue") -> None:
        """The flow's runs in flight at most (None: no limit) and what happens to a run beyond it: `queue` (it
        waits for a place), `skip` (not started) or `fail` (recorded as failed). Runs that were waiting start
        as far as the new limit allows (all of them without one)."""
        tk = TenantKeys(tenant)
        if limit:
            self.redis.hset(tk.flow_limit(flow_id), mapping={"limit": limit, "mode": mode})
        else:
            self.redis.delete(tk.flow_limit(flow_id))
        self._release(
            keys=[
                tk.flow_limit(flow_id),
                tk.flow_running(flow_id),
                tk.flow_waiting(flow_id),
                tk.queues,
                tk.ready,
            ]
        )

    def forget_flow(self, tenant: str, flow_id: str, version_ids: list[str]) -> None:
        """A deleted flow's state: its versions, snapshots, concurrency limit and captured test request. Called
        once nothing of it runs any more (its runs finished); its queue is retired by the workers when idle."""
        tk = TenantKeys(tenant)
        keys = [tk.flow_version(v) for v in version_ids]
        keys += [tk.snapshots(flow_id), tk.flow_limit(flow_id), tk.flow_running(flow_id), tk.flow_waiting(flow_id),
                 tk.hook_capture(flow_id)]  # fmt: skip
        self.redis.delete(*keys)

    def publish_version(
        self,
        tenant: str,
        flow_id: str,
        version_id: str,
        graph: dict[str, Any],
        components: dict[str, Any] | None = None,
        *,
        ttl_s: int | None = None,
    ) -> None:
        """Make an (immutable) flow version available to every worker and router without SQL.

        `components` carries the pinned imported components it uses (name -> version, runtime, entry,
        descriptor), so a worker resolves exactly those versions."""
        document = orjson.dumps(
            {"flow": flow_id, "version": version_id, "graph": graph, "components": components or {}}
        )
        self.redis.set(TenantKeys(tenant).flow_version(version_id), document, ex=ttl_s)

    def credentials_generation(self, tenant: str) -> int:
        return int(self.redis.get(TenantKeys(tenant).credentials_generation) or 0)

    def credentials_changed(self, tenant: str) -> None:
        """A credential was edited, reconnected or deleted: cached copies in workers are dropped within a second."""
        self.redis.incr(TenantKeys(tenant).credentials_generation)

    def load_version(self, tenant: str, version_id: str) -> dict[str, Any] | None:
        raw = self.redis.get(TenantKeys(tenant).flow_version(version_id))
        return orjson.loads(raw) if raw else None

    # -- starting runs --------------------------------------------------------------------------------
    def place_body(
        self, tk: TenantKeys, envelope: Envelope, body: dict[str, Any], encoded: bytes | None = None
    ) -> bytes:
        """Put the body in the envelope, or aside under its own key when larger than the inline limit.

        Returns the bytes to store under `envelope.body_ref` (b"" when the body stays inline)."""
        encoded = orjson.dumps(body) if encoded is None else encoded
        if len(encoded) > self.inline_body_limit:
            envelope.body, envelope.body_ref = None, tk.body(envelope.mid)
            return encoded
        envelope.body, envelope.body_ref = body, None
        return b""

    def start_run(
        self,
        tenant: str,
        flow_id: str,
        version_id: str,
        step: str,
        body: dict[str, Any],
        *,
        run_id: str | None = None,
        trigger: str = "manual",
        test: bool = False,
        replay_of: str | None = None,
        replay_dead_id: str | None = None,
        attempt: int = 1,
        message_id: str | None = None,
        pipeline: Any = None,
    ) -> str:
        """Durably enqueue a run's first message; returns the run id. Raises BacklogFullError at the quota."""
        tk = self.ensure_tenant(tenant)
        run_id = run_id or uuid.uuid4().hex
        created = now_ms()
        envelope = Envelope(
            tenant=tenant,
            flow=flow_id,
            version=version_id,
            run=run_id,
            step=step,
            mid=message_id or run_id,
            attempt=attempt,
            created_ms=created,
            test=test,
        )
        stored = self.place_body(tk, envelope, body)
        event = {
            "t": "run.started",
            "run": run_id,
            "flow": flow_id,
            "version": version_id,
            "ts": created,
            "trigger": trigger,
            "test": test,
            "replay_of": replay_of,
        }
        try:
            self._start(
                keys=[
                    tk.queue(flow_id),
                    tk.events,
                    tk.run(run_id),
                    tk.backlog,
                    envelope.body_ref or tk.body("-"),
                    tk.dead,
                    tk.queues,
                    tk.ready,
                    tk.flow_limit(flow_id),
                    tk.flow_running(flow_id),
                    tk.flow_waiting(flow_id),
                    tk.quota,
                ],
                args=[
                    envelope.encode(),
                    orjson.dumps(event),
                    self.max_backlog,
                    created,
                    stored,
                    replay_dead_id or "",
                    run_id,
                ],
                client=pipeline,
            )
        except redis.ResponseError as exc:
            if str(exc).startswith("BACKLOG"):
                cap = str(exc).removeprefix("BACKLOG").strip()
                raise BacklogFullError(f"tenant {tenant}: backlog quota of {cap} messages reached") from None
            if str(exc).startswith("SKIPPED"):
                raise ConcurrencyLimitError(f"run not started: {str(exc).removeprefix('SKIPPED ')}") from None
            if "GONE" in str(exc):
                raise DeadLetterGoneError(
                    f"dead letter {replay_dead_id} was replayed or discarded already"
                ) from None
            raise
        return run_id

    # -- reading --------------------------------------------------------------------------------------
    def queues(self, tenant: str) -> list[str]:
        """The tenant's queue streams (one per flow that has run)."""
        return sorted(q.decode() for q in self.redis.smembers(TenantKeys(tenant).queues))

    def read_queue(
        self, consumer: str, queue: str, count: int, block_ms: int | None = None
    ) -> list[Delivery]:
        """New messages of one queue, outside the fair-share order (tests and tools; workers use the
        coordinator)."""
        reply = self.redis.xreadgroup(keys.STEP_GROUP, consumer, {queue: ">"}, count=count, block=block_ms)
        return deliveries(queue, reply[0][1] if reply else [])

    def load_bodies(self, deliveries: list[Delivery]) -> None:
        """Fetch bodies stored aside, in one round trip."""
        aside = [d for d in deliveries if d.envelope.body is None and d.envelope.body_ref]
        if not aside:
            return
        values = self.redis.mget([d.envelope.body_ref for d in aside])
        for delivery, raw in zip(aside, values, strict=True):
            delivery.envelope.body = orjson.loads(raw) if raw else {"data": None}

    def reclaim(self, queue: str, consumer: str, min_idle_ms: int, count: int = 100) -> list[Delivery]:
        """Take over messages of a queue whose worker stopped answering (died, or hung) for longer than
        min_idle_ms."""
        # Redis 6.2 answers [cursor, entries]; 7.x adds the ids of entries deleted meanwhile.
        try:
            entries = self.redis.xautoclaim(
                queue, keys.STEP_GROUP, consumer, min_idle_time=min_idle_ms, start_id="0-0", count=count
            )[1]
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):  # retired since the queues were listed: nothing pending there
                return []
            raise
        if not entries:
            return []
        ids = [entry_id for entry_id, fields in entries if fields]
        deliveries_by_id: dict[bytes, int] = {}
        if ids:
            for info in self.redis.xpending_range(
                queue, keys.STEP_GROUP, min=ids[0], max=ids[-1], count=len(ids) * 2, consumername=consumer
            ):
                deliveries_by_id[info["message_id"]] = info["times_delivered"]
        result = []
        for entry_id, fields in entries:
            if not fields:
                continue
            result.append(
                Delivery(
                    queue,
                    entry_id.decode(),
                    Envelope.decode(fields[b"m"]),
                    deliveries=deliveries_by_id.get(entry_id, 2),
                )
            )
        return result

    # -- committing -----------------------------------------------------------------------------------
    def commit(self, batches: list[CommitBatch], also: Callable[[Any], None] | None = None) -> int:
        """Apply every batch (one script call per queue, all in one round trip). Returns ops applied.

        `also` adds commands of its own to the same round trip (after the commits)."""
        if not batches:
            return 0
        now = now_ms()
        calls = [
            (
                [b.queue, b.tenant_keys.events, b.tenant_keys.delayed, b.tenant_keys.dead,
                 b.tenant_keys.backlog, b.tenant_keys.queues, b.tenant_keys.ready, *b.extra_keys],
                [keys.STEP_GROUP, now, orjson.dumps(b.ops)],
            )
            for b in batches
        ]  # fmt: skip
        if len(calls) == 1 and also is None:
            return int(self._commit(keys=calls[0][0], args=calls[0][1]))
        # EVALSHA by hand: a pipeline given Script objects asks SCRIPT EXISTS first, a round trip per commit
        # (measured: a third of a worker's time under synchronous webhook load).
        pipe = self.redis.pipeline(transaction=False)
        for call_keys, call_args in calls:
            pipe.evalsha(self._commit.sha, len(call_keys), *call_keys, *call_args)
        if also is not None:
            also(pipe)
        applied = 0
        results = pipe.execute(raise_on_error=False)
        for (call_keys, call_args), result in zip(calls, results[: len(calls)], strict=True):
            if isinstance(result, NoScriptError):  # nothing ran: Redis restarted or flushed its scripts
                result = self._commit(keys=call_keys, args=call_args)
            elif isinstance(result, Exception):
                raise result
            applied += int(result)
        for result in results[len(calls) :]:  # the commits are dealt with first: an error here loses none
            if isinstance(result, Exception):
                raise result
        return applied

    def promote_due(self, tenant: str, limit: int = 1000) -> int:
        tk = TenantKeys(tenant)
        return int(
            self._promote(keys=[tk.delayed, tk.legacy_steps, tk.queues, tk.ready], args=[now_ms(), limit])
        )

    # -- housekeeping ---------------------------------------------------------------------------------
    def trim(self, stream: str) -> None:
        """Remove entries every consumer group has acknowledged; never one still pending or undelivered."""
        floor = self._acknowledged_floor(stream)
        if floor is not None:
            self.redis.xtrim(stream, minid=floor, approximate=False)

    def adopt_legacy_queue(self, tenant: str) -> bool:
        """A tenant's steps stream from before per-flow queues becomes one of its queues until it is drained."""
        tk = TenantKeys(tenant)
        return bool(self._adopt(keys=[tk.legacy_steps, tk.queues, tk.ready]))  # checks that it exists, too

    def retire_queue(self, queue: str, idle_ms: int) -> bool:
        """Delete a queue stream nobody wrote to for idle_ms that holds nothing undelivered or pending."""
        tk = TenantKeys(keys.tenant_of_stream(queue))
        return bool(
            self._retire(
                keys=[queue, tk.queues, tk.ready, tk.queue_vtime, tk.queue_cost],
                args=[keys.STEP_GROUP, now_ms() - idle_ms],
            )
        )

    def _acknowledged_floor(self, stream: str) -> str | None:
        try:
            groups = self.redis.xinfo_groups(stream)
        except redis.ResponseError:
            return None
        if not groups:
            return None
        floors = []
        for group in groups:
            last = group["last-delivered-id"]
            last = last.decode() if isinstance(last, bytes) else last
            ms, seq = (int(x) for x in last.split("-"))
            floors.append((ms, seq + 1))  # entries up to last-delivered were handed out
            if group["pending"]:
                summary = self.redis.xpending(stream, group["name"])
                lowest = summary["min"]
                if lowest is None:  # acknowledged since XINFO answered
                    continue
                lowest = lowest.decode() if isinstance(lowest, bytes) else lowest
                pms, pseq = (int(x) for x in lowest.split("-"))
                floors.append((pms, pseq))
        ms, seq = min(floors)
        return f"{ms}-{seq}"

    # -- dead letters and replay -------------------------------------------------------------------------
    def dead_letters(self, tenant: str, count: int = 100, after: str = "-") -> list[DeadLetter]:
        """Oldest first; pass the last entry id seen as `after` (exclusive) for the next page."""
        start = "-" if after == "-" else f"({after}"
        return [
            _dead_letter(e, f) for e, f in self.redis.xrange(TenantKeys(tenant).dead, min=start, count=count)
        ]

    def dead_letter(self, tenant: str, dead_id: str) -> DeadLetter | None:
        try:
            found = self.redis.xrange(TenantKeys(tenant).dead, min=dead_id, max=dead_id)
        except redis.ResponseError:  # not a stream id at all
            return None
        return _dead_letter(*found[0]) if found else None

    def replay(
        self, tenant: str, dead_id: str, *, version_id: str | None = None, run_id: str | None = None
    ) -> str:
        """Run a dead-lettered message again from the step that failed, as a new run linked to the old one.

        Raises DeadLetterGoneError when it was replayed or discarded already (also by a concurrent replay)."""
        letter = self.dead_letter(tenant, dead_id)
        if letter is None:
            raise DeadLetterGoneError(
                f"no dead letter {dead_id} for this tenant (already replayed or discarded?)"
            )
        envelope = letter.envelope
        body = letter.body or envelope.body or {"data": None}
        return self.start_run(
            tenant,
            envelope.flow,
            version_id or envelope.version,
            envelope.step,
            body,
            trigger="replay",
            test=envelope.test,
            replay_of=envelope.run,
            replay_dead_id=dead_id,
            run_id=run_id,
        )

    def discard_dead_letter(self, tenant: str, dead_id: str) -> bool:
        try:
            return bool(self.redis.xdel(TenantKeys(tenant).dead, dead_id))
        except redis.ResponseError:  # not a stream id at all
            return False

    def runs_in_flight(self, tenant: str, run_ids: list[str]) -> set[str]:
        """Which of these runs still have bookkeeping in Redis (it is deleted when a run finishes)."""
        if not run_ids:
            return set()
        tk = TenantKeys(tenant)
        pipe = self.redis.pipeline(transaction=False)
        for run_id in run_ids:
            pipe.exists(tk.run(run_id))
        return {run_id for run_id, found in zip(run_ids, pipe.execute(), strict=True) if found}

    def backlog(self, tenant: str) -> int:
        return int(self.redis.get(TenantKeys(tenant).backlog) or 0)
