"""Helpers shared by benchmarks: a private Redis server, percentiles, process RSS."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from app.processes.embedded_redis import free_port, redis_server_binary


class BenchRedis:
    """A throw-away redis-server (Debian's when installed, else the embedded one) with AOF everysec."""

    def __init__(self, appendfsync: str = "everysec") -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="hub-bench-redis-"))
        self.port = free_port()
        binary = shutil.which("redis-server") or str(redis_server_binary())
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder), "--save", "",
             "--appendonly", "yes", "--appendfsync", appendfsync, "--daemonize", "no", "--logfile", ""],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        self.url = f"redis://127.0.0.1:{self.port}/0"
        client = redis.Redis.from_url(self.url)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.02)
        self.version = client.info("server")["redis_version"]
        client.close()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]
