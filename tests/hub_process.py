"""Start `hub up` as a real process tree for tests, and stop it the way a person would (Ctrl-C)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from app.processes.embedded_redis import free_port

READY_TIMEOUT = 180.0  # the first start on a fresh clone installs the frontend's packages


@dataclass
class HubProcess:
    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env.update(HUB_DATA_DIR=str(self.data_dir), HUB_WEB_PORT=str(self.port), HUB_LOG_LEVEL="WARNING")
        env.update(self.extra_env)
        return env

    def start(self) -> HubProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"hub-up-{int(time.time() * 1000)}.log"
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "up"],
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"hub up exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/ping", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"hub up not ready after {READY_TIMEOUT} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text()[-5000:] if self.log_path and self.log_path.exists() else ""

    def descendants(self) -> list[psutil.Process]:
        assert self.process is not None
        return psutil.Process(self.process.pid).children(recursive=True)

    def interrupt(self, timeout: float = 60.0) -> int:
        """Ctrl-C: SIGINT to `hub up` alone; it must stop everything it started."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)

    def kill_everything(self) -> None:
        """Last-resort cleanup so that a failing test never leaves processes behind."""
        if self.process is None:
            return
        try:
            leftovers = [psutil.Process(self.process.pid), *self.descendants()]
        except psutil.NoSuchProcess:
            leftovers = []
        for proc in leftovers:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        self.process.wait(10)
