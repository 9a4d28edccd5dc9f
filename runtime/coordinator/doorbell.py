"""Wakes idle workers when step messages are queued: the scripts that queue them publish on one channel.

The subscription stays open while the worker lives, so a message published between a worker's last look at
the queues and its wait is buffered and ends the wait at once (never a lost wake-up)."""

from __future__ import annotations

import contextlib
import logging
import time

import redis

from runtime.bus.keys import WORK_CHANNEL

log = logging.getLogger(__name__)


class Doorbell:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._pubsub: redis.client.PubSub | None = None

    def _subscription(self) -> redis.client.PubSub:
        if self._pubsub is None:
            self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            self._pubsub.subscribe(WORK_CHANNEL)
        return self._pubsub

    def clear(self) -> None:
        """Forget rings heard so far (the caller is about to look at the queues)."""
        try:
            pubsub = self._subscription()
            while pubsub.get_message(timeout=0) is not None:
                pass
        except redis.ConnectionError:
            self.close()

    def wait(self, timeout_s: float) -> bool:
        """Until something is queued or the timeout; True when it rang."""
        deadline = time.monotonic() + timeout_s
        try:
            pubsub = self._subscription()
            while (left := deadline - time.monotonic()) > 0:
                message = pubsub.get_message(timeout=left)
                if message is not None and message.get("type") == "message":
                    return True
        except redis.ConnectionError as exc:
            log.warning("the work channel was lost (%s); polling until it is back", exc)
            self.close()
            time.sleep(max(0.0, min(timeout_s, deadline - time.monotonic())))
        return False

    def close(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(redis.RedisError):
                self._pubsub.close()
            self._pubsub = None
