"""`hub up` starts every part of the hub, and Ctrl-C or a crashed part stops all of them."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from tests.hub_process import HubProcess

pytestmark = pytest.mark.slow


def _alive(processes: list[psutil.Process]) -> list[str]:
    alive = []
    for proc in processes:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            pass
    return alive


def _names(processes: list[psutil.Process]) -> str:
    return " | ".join(" ".join(p.cmdline()) for p in processes)


def test_sigint_stops_every_child(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path / "data")
    try:
        hub.start()
        children = hub.descendants()
        names = _names(children)
        for part in ("redis-server", "app.cli worker", "app.cli recorder", "app.cli scheduler", "reflex run"):
            assert part in names, f"{part} not running under hub up: {names}"
        assert (tmp_path / "data" / "redis" / "url").exists()
        assert (tmp_path / "data" / "hub.db").exists()

        code = hub.interrupt()
        assert code == 0, hub.log()
        deadline = time.monotonic() + 5
        while _alive(children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _alive(children) == []
        assert not (tmp_path / "data" / "redis" / "url").exists()
        # The embedded Redis kept its append-only file in the data folder (nothing lost on restart).
        assert any((tmp_path / "data" / "redis").glob("appendonly*"))
    finally:
        hub.kill_everything()


def test_a_crashed_part_stops_the_rest(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path / "data")
    try:
        hub.start()
        children = hub.descendants()
        worker = next(p for p in children if "app.cli worker" in " ".join(p.cmdline()))
        worker.kill()
        assert hub.process.wait(60) == 1
        assert "worker exited" in hub.log()
        time.sleep(0.5)
        assert _alive(children) == []
    finally:
        hub.kill_everything()
