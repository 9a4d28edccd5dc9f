"""The scheduler lease: one holder at a time, renewed by it, taken over once it lapses, released on exit."""

from __future__ import annotations

import time

from app.control.leader import Lease


def test_one_holder_at_a_time_and_a_takeover_when_it_lapses(redis) -> None:
    key = f"test:leader:{time.monotonic_ns()}"
    first, second = Lease(redis, key, lease_s=0.3), Lease(redis, key, lease_s=0.3)
    assert first.hold() and not second.hold()
    assert first.current() == first.holder
    time.sleep(0.2)
    assert first.hold()  # renewed: the standby still waits
    time.sleep(0.2)
    assert not second.hold()
    time.sleep(0.4)  # the holder stopped renewing (killed, hung)
    assert second.hold() and not first.hold()
    second.release()
    assert first.hold()


def test_release_never_drops_another_holders_lease(redis) -> None:
    key = f"test:leader:{time.monotonic_ns()}"
    first, second = Lease(redis, key, lease_s=5), Lease(redis, key, lease_s=5)
    assert first.hold()
    second.release()
    assert first.current() == first.holder and not second.hold()
