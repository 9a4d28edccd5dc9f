"""How a step says that something went wrong, or that it wants to be called again later."""

from __future__ import annotations


class StepError(Exception):
    """The step failed. Retried per the node's retry policy unless `retryable` is False."""

    retryable = True


class PermanentStepError(StepError):
    """Retrying cannot help (bad input, a 4xx answer): the message goes straight to the dead letters."""

    retryable = False


class Rebound(Exception):
    """The step asks to be retried later on purpose (a rate-limited API, a resource not ready yet)."""

    def __init__(self, reason: str, delay_s: float = 10.0) -> None:
        super().__init__(reason)
        self.delay_s = delay_s
