"""`hub scheduler` started twice: one is active, the other stands by and takes over when the first is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from app.control.leader import LEADER_KEY

pytestmark = pytest.mark.slow


def _holder_pid(redis) -> int | None:
    value = redis.get(LEADER_KEY)
    return int(value.decode().split(":")[1]) if value else None


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_standby_scheduler_takes_over_when_the_active_one_dies(
    redis, redis_url: str, sqlite_template, tmp_path
) -> None:
    redis.delete(LEADER_KEY)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_REDIS_URL=redis_url, HUB_DATA_DIR=str(tmp_path), HUB_DATABASE_URL=f"sqlite:///{sqlite_template}",
               HUB_SCHEDULER_LEASE_S="3", HUB_LOG_LEVEL="INFO")  # fmt: skip
    processes = {}
    try:
        for _ in range(2):
            process = subprocess.Popen([sys.executable, "-m", "app.cli", "scheduler"], env=env,
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            processes[process.pid] = process
        active = _wait(lambda: _holder_pid(redis), 30, "an active scheduler")
        assert active in processes
        time.sleep(2)  # several passes: the standby never takes it while the active one renews
        assert _holder_pid(redis) == active
        # The periodic jobs are installed by the one that leads.
        assert redis.zcard("rq:scheduler:scheduled_jobs") >= 3

        processes[active].send_signal(signal.SIGKILL)
        processes[active].wait(10)
        standby = next(pid for pid in processes if pid != active)
        started = time.monotonic()
        _wait(lambda: _holder_pid(redis) == standby, 15, "the standby to take over")
        assert time.monotonic() - started < 3 + 2  # within one lease (and one pass)
        assert processes[standby].poll() is None
        processes[standby].send_signal(signal.SIGTERM)  # a clean stop hands the lease back at once
        processes[standby].wait(10)
        assert redis.get(LEADER_KEY) is None
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
