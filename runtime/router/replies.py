"""Synchronous webhooks: the router waits for the flow's Reply step (or the end of the run).

Each router process listens on its own channel; a synchronous run carries that channel in its bookkeeping, and
the commit script that records the reply (or finishes the run) publishes to it in the same atomic step. The
reply is also kept in the run's reply list, which the router reads when the announcement was missed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from runtime.bus.keys import TenantKeys, reply_channel
from runtime.router.subscription import Subscription


@dataclass(slots=True)
class Outcome:
    reply: dict[str, Any] | None = None  # {"status", "headers", "body"} from the Reply step
    finished: str | None = None  # the run's status when it ended without replying


class ReplyWaiter:
    def __init__(self, client: aioredis.Redis, listener: aioredis.Redis, router_id: str) -> None:
        self.redis = client
        self.channel = reply_channel(router_id)
        self._waiting: dict[str, asyncio.Future[Outcome]] = {}
        self._ready = asyncio.Event()
        self._replies = Subscription(listener, self.channel, self._deliver, self._ready.set, "reply channel")

    async def start(self) -> None:
        """Returns once the channel is subscribed, so no reply can be published before anyone listens."""
        self._replies.start()
        await asyncio.wait_for(self._ready.wait(), timeout=2)

    async def stop(self) -> None:
        await self._replies.stop()

    def expect(self, run_id: str) -> asyncio.Future[Outcome]:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting[run_id] = future
        return future

    def forget(self, run_id: str) -> None:
        self._waiting.pop(run_id, None)

    async def wait(
        self, tenant: str, run_id: str, future: asyncio.Future[Outcome], timeout_s: float
    ) -> Outcome | None:
        """The outcome, or None when the run neither replied nor finished in time (it goes on regardless)."""
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            # An announcement lost while reconnecting: the reply list still has it.
            try:
                raw = await self.redis.lindex(TenantKeys(tenant).reply(run_id), 0)
            except (RedisError, OSError):
                return None
            return Outcome(reply=orjson.loads(raw)) if raw else None
        finally:
            self.forget(run_id)

    def _deliver(self, data: bytes) -> None:
        run_id, _, rest = data.partition(b" ")
        future = self._waiting.get(run_id.decode())
        if future is None or future.done():
            return  # the first reply wins; later ones are kept in the run's records only
        kind, _, payload = rest.partition(b" ")
        if kind == b"R":
            future.set_result(Outcome(reply=orjson.loads(payload)))
        elif kind == b"F":
            future.set_result(Outcome(finished=payload.decode()))
