"""Exceptions a user can act on. Each message says what went wrong and what to do."""


class HubError(Exception):
    """Base class of every error the hub reports to a person."""


class ConfigError(HubError):
    """A configuration value is missing, malformed or points at something unreachable."""


class NotFoundError(HubError):
    """The object does not exist, or belongs to another tenant (the two are indistinguishable on purpose)."""


class PermissionDeniedError(HubError):
    """The user is known but their role does not allow the action."""


class TenantScopeError(HubError):
    """Data access was attempted without saying which tenant it is for (a programming error)."""


class AuthenticationError(HubError):
    """Login failed. The message is deliberately generic."""


class RateLimitedError(HubError):
    """Too many attempts; the message says when to try again."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class ValidationError(HubError):
    """Input was rejected; nothing was changed."""


class ConflictError(HubError):
    """Someone else changed the object since it was read; reload and apply the change again."""


class FlowInvalidError(ValidationError):
    """A flow cannot be published or run; `problems` names the node of each reason."""

    def __init__(self, message: str, problems: list) -> None:
        super().__init__(message)
        self.problems = problems


class BackpressureError(RateLimitedError):
    """The tenant's backlog is full: nothing was accepted; try again when the workers have caught up."""
