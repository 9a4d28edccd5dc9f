"""The rq worker of the control plane: the control queue and every tenant's tick queue, taken in turn.

rq listens to a fixed list of queues; this worker reads the list of tick queues again before every wait (a
tenant's first schedule adds its queue), and waits at most a few seconds so that a new queue is heard soon."""

from __future__ import annotations

from typing import Any

import redis
from rq import Queue, SimpleWorker
from rq.worker import DequeueStrategy

from runtime.control import CONTROL_QUEUE, TICK_QUEUES

REFRESH_S = 5


class ControlWorker(SimpleWorker):
    """SimpleWorker (no fork per job: `hub worker` runs its step loop in a thread beside it)."""

    def __init__(self, connection: redis.Redis, **kwargs: Any) -> None:
        super().__init__([Queue(CONTROL_QUEUE, connection=connection)], connection=connection, **kwargs)
        self._dequeue_strategy = DequeueStrategy.ROUND_ROBIN

    @property
    def dequeue_timeout(self) -> int:
        return REFRESH_S

    def work(self, *args: Any, **kwargs: Any) -> bool:
        kwargs.setdefault("dequeue_strategy", DequeueStrategy.ROUND_ROBIN)
        return super().work(*args, **kwargs)

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
        """rq waits inside this call until a job comes; here it gives up after REFRESH_S (as if idle for that
        long), the list of queues is read again and the wait goes on. `max_idle_time` is not supported."""
        while True:
            self._refresh_queues()
            if timeout is None:  # burst: one look
                return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            result = super().dequeue_job_and_maintain_ttl(timeout, REFRESH_S)
            if result is not None or self._stop_requested:
                return result

    def _refresh_queues(self) -> None:
        try:
            found = self.connection.smembers(TICK_QUEUES)
        except redis.ConnectionError as exc:  # a blip: keep the queues it knows; rq's own wait retries
            self.log.warning("could not read the tick queues (%s); listening to the ones known", exc)
            return
        names = {CONTROL_QUEUE, *(n.decode() for n in found)}
        known = {q.name for q in self.queues}
        if names == known:
            return
        added = [
            Queue(n, connection=self.connection, serializer=self.serializer) for n in sorted(names - known)
        ]
        self.queues = [q for q in self.queues if q.name in names] + added
        kept = [q for q in self._ordered_queues if q.name in names]
        self._ordered_queues = kept + added  # new queues at the end of the turn
