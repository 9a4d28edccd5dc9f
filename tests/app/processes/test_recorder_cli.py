"""`hub worker` and `hub recorder` as real processes: a manual run ends up recorded in the database."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import orjson
import pytest

from app.services import accounts, flows
from app.services import runs as run_service
from app.storage.db import Database
from app.storage.models import Run
from app.storage.scoping import tenant_session
from runtime.bus.streams import StreamsBus
from runtime.components.builtin import builtin_registry

pytestmark = pytest.mark.slow


def test_worker_and_recorder_processes_record_a_run(redis, redis_url: str, sqlite_template, tmp_path) -> None:
    path = tmp_path / "hub.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_REDIS_URL=redis_url,
        HUB_DATA_DIR=str(tmp_path),
        HUB_DATABASE_URL=url,
        HUB_LOG_LEVEL="INFO",
        HUB_LOG_FORMAT="json",
    )
    db = Database.connect(url)
    bus, components = StreamsBus(redis), builtin_registry()
    tenant = accounts.create_tenant(db, "Recorded").id
    graph = {
        "nodes": [
            {"id": "start", "component": "manual", "function": "start"},
            {"id": "say", "component": "log", "function": "log"},
        ],
        "edges": [{"source": "start", "target": "say"}],
    }
    flow = flows.create_flow(db, tenant, "logged", graph)
    flows.publish_flow(db, bus, components, tenant, flow.id)
    run_id = run_service.start_manual_run(db, bus, components, tenant, flow.id, {"hello": "world"})
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "app.cli", name],
            env=env,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for name in ("worker", "recorder")
    ]
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline and status != "succeeded":
            with tenant_session(db.sessions, tenant) as session:
                run = session.get(Run, run_id)
                status = run.status if run else None
            time.sleep(0.2)
        assert status == "succeeded"
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        outputs = [process.communicate(timeout=30) for process in processes]
        codes = [process.returncode for process in processes]
        db.dispose()
    assert codes == [0, 0], outputs
    # Every line either process logged is one JSON object naming its service (what a log collector needs).
    for name, (out, err) in zip(("worker", "recorder"), outputs, strict=True):
        lines = [orjson.loads(line) for line in (out + err).splitlines() if line.strip()]
        assert lines and all(line["service"] == name and line["level"] and line["ts"] for line in lines)
        assert any(f"{name} " in line["message"] and "started" in line["message"] for line in lines), lines
