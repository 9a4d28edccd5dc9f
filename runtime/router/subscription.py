"""A pub/sub channel a router follows for as long as it runs (route announcements, its reply channel)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import redis.asyncio as aioredis

log = logging.getLogger(__name__)


class Subscription:
    """Reconnects after Redis restarts, and calls `on_subscribed` each time the server confirms the subscription:
    from then on messages reach us, and whatever was published while we were away was missed."""

    def __init__(
        self,
        listener: aioredis.Redis,
        channel: str,
        on_message: Callable[[bytes], None],
        on_subscribed: Callable[[], None],
        what: str,
    ) -> None:
        self.listener = listener
        self.channel = channel
        self.on_message = on_message
        self.on_subscribed = on_subscribed
        self.what = what
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._follow())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _follow(self) -> None:
        while True:
            pubsub = self.listener.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self.on_message(message["data"])
                    elif message.get("type") == "subscribe":
                        self.on_subscribed()
            except asyncio.CancelledError:
                raise
            except (
                Exception
            ) as exc:  # Redis restarting: retry; the ingress script keeps requests correct meanwhile
                log.warning("%s interrupted (%s); retrying", self.what, exc)
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
