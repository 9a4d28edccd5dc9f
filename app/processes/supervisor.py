"""`hub up`: run the embedded Redis, the worker, the scheduler and the web app as children, and stop them all.

Each child gets its own process group so that stopping it also stops whatever it started (Reflex starts
a server and a bundler). Ctrl-C (SIGINT) or SIGTERM stops the children in reverse order, then Redis.
If any child dies on its own, the others are stopped too and `hub up` exits non-zero: a half-running hub
that looks healthy is worse than a stopped one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

STOP_TIMEOUT = 15.0


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = field(default=None, repr=False)

    def start(self, env: dict[str, str], cwd: str | None = None) -> None:
        self.process = subprocess.Popen(
            self.argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, start_new_session=True
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal_group(self, sig: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)


@dataclass
class Supervisor:
    children: list[Child]
    say: Callable[[str], None] = lambda line: sys.stderr.write(line + "\n")
    _stopping: bool = False

    def request_stop(self, *_args: object) -> None:
        self._stopping = True

    def start_all(self, env: dict[str, str], cwd: str | None = None) -> None:
        for child in self.children:
            child.start(env, cwd)

    def wait(self, poll_interval: float = 0.2) -> int:
        """Block until a stop is requested (0) or a child exits on its own (1)."""
        while not self._stopping:
            for child in self.children:
                if not child.running:
                    code = child.process.returncode if child.process else None
                    self.say(f"hub: {child.name} exited with code {code}; stopping the others")
                    return 1
            time.sleep(poll_interval)
        return 0

    def stop_all(self, timeout: float = STOP_TIMEOUT) -> None:
        for child in reversed(self.children):
            child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in reversed(self.children):
            if child.process is None:
                continue
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(max(deadline - time.monotonic(), 0.1))
            # Whatever the child left in its group (a bundler, a server) goes too, even if the child is gone.
            child.signal_group(signal.SIGKILL)
            if child.process.poll() is None:
                child.process.wait()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
