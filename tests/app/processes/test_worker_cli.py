"""`hub worker` as a real process runs flows from the streams bus and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import orjson
import pytest

from runtime.bus.keys import TenantKeys
from runtime.bus.streams import StreamsBus

pytestmark = pytest.mark.slow


def test_hub_worker_runs_a_flow(redis, redis_url: str, tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_REDIS_URL=redis_url, HUB_DATA_DIR=str(tmp_path), HUB_LOG_LEVEL="WARNING")
    worker = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env=env, stdin=subprocess.DEVNULL)
    try:
        bus = StreamsBus(redis)
        tenant, version = f"cli{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
        graph = {
            "nodes": [
                {"id": "start", "component": "manual", "function": "start"},
                {
                    "id": "shape",
                    "component": "jsonata",
                    "function": "transform",
                    "fields": {"expression": "a + 1"},
                },
            ],
            "edges": [{"source": "start", "target": "shape"}],
        }
        bus.publish_version(tenant, "flow", version, graph)
        run = bus.start_run(tenant, "flow", version, "start", {"data": {"a": 41}})
        deadline = time.monotonic() + 30
        events: list[dict] = []
        while time.monotonic() < deadline:
            events = [
                e
                for _, f in redis.xrange(TenantKeys(tenant).events)
                for e in orjson.loads(f[b"e"])
                if e["run"] == run
            ]
            if any(e["t"] == "run.finished" for e in events):
                break
            time.sleep(0.1)
        finished = [e for e in events if e["t"] == "run.finished"]
        assert finished and finished[0]["status"] == "succeeded"
        assert next(e for e in events if e.get("step") == "shape")["out"] == [42]
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
