from __future__ import annotations

import pytest

from app.auth.throttle import IP_FACTOR, LoginThrottle
from app.errors import RateLimitedError


def test_locks_after_max_failures_per_email(redis) -> None:
    throttle = LoginThrottle(redis, max_failures=3, window_seconds=60)
    for _ in range(3):
        throttle.check("a@example.com", "10.0.0.1")
        throttle.record_failure("A@example.com ", "10.0.0.1")
    with pytest.raises(
        RateLimitedError, match=r"Too many failed attempts\. Try again in 1 minute\."
    ) as caught:
        throttle.check("a@example.com", "10.0.0.2")
    assert 0 < caught.value.retry_after_seconds <= 60
    throttle.check("b@example.com", "10.0.0.1")  # another account from the same address still may try


def test_address_limit_spans_accounts(redis) -> None:
    throttle = LoginThrottle(redis, max_failures=2, window_seconds=60)
    for i in range(2 * IP_FACTOR):
        throttle.record_failure(f"user{i}@example.com", "10.0.0.9")
    with pytest.raises(RateLimitedError):
        throttle.check("fresh@example.com", "10.0.0.9")


def test_reset_clears_the_account_counter(redis) -> None:
    throttle = LoginThrottle(redis, max_failures=1, window_seconds=60)
    throttle.record_failure("a@example.com", None)
    with pytest.raises(RateLimitedError):
        throttle.check("a@example.com", None)
    throttle.reset("a@example.com")
    throttle.check("a@example.com", None)
