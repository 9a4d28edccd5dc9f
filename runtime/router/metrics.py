"""What a router counts: requests by status, refusals by reason, and latency. Prometheus text via /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

REASONS = (
    "not_found", "inactive", "method", "too_large", "unauthorized", "bad_request",
    "rate_limited", "backlog_full", "concurrency_limit", "unavailable", "timeout",
)  # fmt: skip


class RouterMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "hub_webhook_requests",
            "Webhook requests answered, by HTTP status",
            ["status"],
            registry=self.registry,
        )
        self.rejections = Counter(
            "hub_webhook_rejections",
            "Webhook requests refused, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "hub_webhook_request_seconds",
            "Time from request to answer, by mode",
            ["mode"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        # Children bound once: labels() per request would cost more than the rest of the bookkeeping.
        self._status = {}
        self._reasons = {reason: self.rejections.labels(reason) for reason in REASONS}
        self._modes = {mode: self.latency.labels(mode) for mode in ("async", "sync")}

    def answered(self, status: int, mode: str, seconds: float) -> None:
        child = self._status.get(status)
        if child is None:
            child = self._status[status] = self.requests.labels(str(status))
        child.inc()
        self._modes[mode].observe(seconds)

    def rejected(self, reason: str) -> None:
        self._reasons[reason].inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
