"""Every table of the hub. Importing this package registers them all on Base.metadata."""

from app.storage.models.audit import AuditEvent
from app.storage.models.catalog import Component, ComponentRuntime
from app.storage.models.flows import Flow, FlowStatus, FlowVersion, Template, Webhook, WebhookKind
from app.storage.models.hub_settings import HubSetting
from app.storage.models.runs import Run, RunLogLine, RunStatus, StepExecution
from app.storage.models.tenancy import ApiToken, Invitation, Membership, Role, Tenant, User, UserSession
from app.storage.models.vault import Credential, CredentialKind, OAuthClient, TenantKey

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Component",
    "ComponentRuntime",
    "Credential",
    "CredentialKind",
    "Flow",
    "FlowStatus",
    "FlowVersion",
    "HubSetting",
    "Invitation",
    "Membership",
    "OAuthClient",
    "Role",
    "Run",
    "RunLogLine",
    "RunStatus",
    "StepExecution",
    "Template",
    "Tenant",
    "TenantKey",
    "User",
    "UserSession",
    "Webhook",
    "WebhookKind",
]
