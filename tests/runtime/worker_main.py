"""A worker process for crash tests: `python -m tests.runtime.worker_main REDIS_URL NAME VISIBILITY_MS`.

Its `sink.record` step adds the run id to a set and counts every execution, so a test can tell
"processed at least once" from "lost". SIGTERM stops it gracefully; the test kills it with SIGKILL.
"""

from __future__ import annotations

import signal
import sys
import threading
import time

import redis

from runtime.bus.streams import StreamsBus
from runtime.components.builtin import builtin_registry
from runtime.components.registry import spec_from_descriptor
from runtime.worker import Worker, WorkerConfig


def main() -> None:
    url, name, visibility_ms = sys.argv[1], sys.argv[2], int(sys.argv[3])
    client = redis.Redis.from_url(url)

    def record(message, fields, context):
        pipe = client.pipeline(transaction=False)
        pipe.sadd("test:sink:runs", context.run_id)
        pipe.incr("test:sink:executions")
        pipe.incr(f"test:sink:by:{name}")
        pipe.execute()
        time.sleep(float(fields.get("sleep_s", 0)))
        return None

    registry = builtin_registry().with_components(
        spec_from_descriptor("sink", {"actions": {"record": {"fields": {}}}}, {"record": record})
    )
    config = WorkerConfig(
        name=name, batch_size=50, visibility_timeout_ms=visibility_ms, housekeeping_interval_s=0.2
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    Worker(StreamsBus(client), registry, config).run(stop)


if __name__ == "__main__":
    main()
