"""Tenants' quotas and fair-share weight: read and changed by hub administrators, published to Redis where the
workers and routers read them (runtime/coordinator/quotas.py)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import redis
import sqlalchemy as sa

from app.config import HubSettings
from app.errors import NotFoundError, PermissionDeniedError, ValidationError
from app.runtime_ids import runtime_id
from app.services import audit, webhooks
from app.storage.db import Database
from app.storage.models import Tenant
from app.storage.scoping import system_session
from runtime.bus.streams import StreamsBus
from runtime.components.spec import ComponentResolver
from runtime.coordinator.quotas import QuotaStore, TenantQuota

# What an administrator may set, and its bounds.
LIMITS = {
    "weight": (1, 1_000),
    "max_concurrent_steps": (1, 100_000),
    "max_warm_runners": (1, 1_024),
    "max_runner_memory_mb": (64, 1_048_576),
    "max_backlog": (1, 100_000_000),
    "webhook_rps": (1, 1_000_000),
    "outbound_rps": (1, 1_000_000),
}
QUOTA_FIELDS = tuple(name for name in LIMITS if name != "weight")  # stored per tenant, NULL: the default
LABELS = {
    "weight": "Fair-share weight",
    "max_concurrent_steps": "Steps executing at once",
    "max_warm_runners": "Warm runners per worker",
    "max_runner_memory_mb": "Memory of its warm runners per worker (MB)",
    "max_backlog": "Messages waiting (backlog)",
    "webhook_rps": "Webhook requests per second",
    "outbound_rps": "Outbound HTTP requests per second (built-in HTTP steps)",
}


def quota_defaults(settings: HubSettings) -> TenantQuota:
    """The quota of a tenant that has set nothing of its own (its weight is its own: always stored)."""
    return TenantQuota(
        max_concurrent_steps=settings.tenant_max_concurrent_steps,
        max_warm_runners=settings.tenant_max_runners,
        max_runner_memory_mb=settings.tenant_max_runner_memory_mb,
        max_backlog=settings.tenant_max_backlog,
        webhook_rps=math.ceil(settings.webhook_tenant_rps),  # quotas are whole numbers
        outbound_rps=settings.tenant_outbound_rps,
    )


@dataclass(frozen=True)
class QuotaView:
    weight: int
    own: dict[str, int | None]  # what the tenant has set (None: the default)
    effective: TenantQuota


def effective(tenant: Tenant, defaults: TenantQuota) -> TenantQuota:
    values = {name: getattr(tenant, name) for name in QUOTA_FIELDS}
    return TenantQuota(
        weight=tenant.weight,
        **{name: value if value is not None else getattr(defaults, name) for name, value in values.items()},
    )


def quotas_of(db: Database, tenant_id: uuid.UUID, defaults: TenantQuota) -> QuotaView:
    with system_session(db.sessions) as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFoundError("This tenant does not exist any more.")
        return QuotaView(
            tenant.weight, {name: getattr(tenant, name) for name in QUOTA_FIELDS}, effective(tenant, defaults)
        )


def parse(values: dict[str, str]) -> dict[str, int | None]:
    """Form input to quota values: empty means the default; errors name the field."""
    parsed: dict[str, int | None] = {}
    for name, (low, high) in LIMITS.items():
        raw = str(values.get(name, "") or "").strip()
        if not raw:
            if name == "weight":
                raise ValidationError(f"{LABELS[name]}: required (1 is everyone's default).")
            parsed[name] = None
            continue
        try:
            number = int(raw)
        except ValueError:
            raise ValidationError(f"{LABELS[name]}: {raw!r} is not a whole number.") from None
        if not low <= number <= high:
            raise ValidationError(
                f"{LABELS[name]}: must be between {low} and {high:,}, or empty for the default."
            )
        parsed[name] = number
    return parsed


def update_quotas(
    db: Database,
    client: redis.Redis,
    tenant_id: uuid.UUID,
    values: dict[str, int | None],
    *,
    actor_user_id: uuid.UUID,
    actor_is_superuser: bool,
    defaults: TenantQuota,
    bus: StreamsBus,
    components_for: Callable[[uuid.UUID], ComponentResolver],
    routes: webhooks.RouteDefaults,
) -> QuotaView:
    """Change a tenant's quotas (hub administrators only): stored, audited, and in force on every worker
    within a second and on every router at once."""
    if not actor_is_superuser:
        raise PermissionDeniedError("Only hub administrators may change a tenant's quotas.")
    with system_session(db.sessions) as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFoundError("This tenant does not exist any more.")
        before = {name: getattr(tenant, name) for name in LIMITS}
        for name, value in values.items():
            if name not in LIMITS:
                raise ValidationError(f"Unknown quota {name!r}.")
            if name == "weight" and value is None:
                raise ValidationError(f"{LABELS[name]}: required.")
            setattr(tenant, name, value)
        after = {name: getattr(tenant, name) for name in LIMITS}
        changed = {name: [before[name], after[name]] for name in after if before[name] != after[name]}
        if changed:
            audit.record(
                session,
                "tenant.quotas_changed",
                tenant_id=tenant_id,
                actor_user_id=actor_user_id,
                target_type="tenant",
                target_id=tenant_id,
                changed=changed,
            )
        quota = effective(tenant, defaults)
    QuotaStore(client).write(runtime_id(tenant_id), quota)
    if {"webhook_rps", "max_backlog"} & set(changed):  # the routers read these from the routes
        webhooks.sync_all_routes(db, bus, components_for, routes, tenant_id=tenant_id)
    return quotas_of(db, tenant_id, defaults)


def publish_all(db: Database, client: redis.Redis, defaults: TenantQuota) -> int:
    """Write every tenant's quotas to Redis (start-up; heals a Redis that lost them). Returns tenants written."""
    store = QuotaStore(client)
    with system_session(db.sessions) as session:
        tenants = list(session.scalars(sa.select(Tenant)))
        for tenant in tenants:
            store.write(runtime_id(tenant.id), effective(tenant, defaults))
    return len(tenants)
