"""Run retention: how long a tenant's run history is kept (days and/or a number of runs, a hub-wide default
with a per-tenant override), and the figures of what the retention job deleted and freed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import orjson
import redis

from app.config import HubSettings
from app.errors import NotFoundError, ValidationError
from app.runtime_ids import runtime_id
from app.services import audit
from app.services.members import ADMINS, require_role
from app.storage.db import Database
from app.storage.models import Tenant
from app.storage.scoping import system_session, tenant_session

LAST_KEY = "hub:retention:last"  # the last job's figures (JSON)
TOTALS_KEY = "hub:retention:totals"  # counters since the hub began, for /metrics
MAX_DAYS = 36_500
MAX_RUNS = 100_000_000


@dataclass(frozen=True)
class RetentionPolicy:
    days: int  # runs started longer ago are deleted; 0: kept whatever their age
    runs: int  # only the newest this many runs are kept; 0: no limit

    def describe(self) -> str:
        parts = []
        if self.days:
            parts.append(f"{self.days} day{'s' if self.days != 1 else ''}")
        if self.runs:
            parts.append(f"the newest {self.runs:,} runs")
        return " and ".join(parts) if parts else "kept for ever"


@dataclass(frozen=True)
class RetentionView:
    own_days: int | None  # None: the hub's default
    own_runs: int | None
    effective: RetentionPolicy
    default: RetentionPolicy


@dataclass
class TenantFreed:
    runs: int = 0
    steps: int = 0
    logs: int = 0
    dead_letters: int = 0


@dataclass
class RetentionReport:
    started_at: str = ""
    seconds: float = 0.0
    runs: int = 0
    steps: int = 0
    logs: int = 0
    dead_letters: int = 0  # with the message bodies they keep, in Redis
    bytes_freed: int = 0  # SQLite: how much the file shrank; PostgreSQL: the size of the rows deleted
    database: str = ""
    tenants: dict[str, TenantFreed] = field(default_factory=dict)  # by tenant id (hex)


def default_policy(settings: HubSettings) -> RetentionPolicy:
    return RetentionPolicy(settings.retention_days, settings.retention_runs)


def policy_of(tenant: Tenant, default: RetentionPolicy) -> RetentionPolicy:
    return RetentionPolicy(
        tenant.retention_days if tenant.retention_days is not None else default.days,
        tenant.retention_runs if tenant.retention_runs is not None else default.runs,
    )


def retention_of(db: Database, tenant_id: uuid.UUID, default: RetentionPolicy) -> RetentionView:
    with system_session(db.sessions) as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFoundError("This tenant does not exist any more.")
        return RetentionView(
            tenant.retention_days, tenant.retention_runs, policy_of(tenant, default), default
        )


def parse_limit(raw: str, what: str, high: int) -> int | None:
    """Form input: empty is the hub's default, 0 is no limit."""
    raw = str(raw or "").strip().replace(",", "").replace("_", "")
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"{what}: {raw!r} is not a whole number.") from None
    if not 0 <= value <= high:
        raise ValidationError(f"{what}: must be between 0 (no limit) and {high:,}, or empty for the default.")
    return value


def update_retention(
    db: Database,
    tenant_id: uuid.UUID,
    days: int | None,
    runs: int | None,
    *,
    user_id: uuid.UUID | None,
    default: RetentionPolicy,
) -> RetentionView:
    """A tenant's owners and admins choose how long its run history is kept (None: the hub's default)."""
    with tenant_session(db.sessions, tenant_id) as session:
        require_role(session, user_id, ADMINS, "change how long runs are kept")
    with system_session(db.sessions) as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFoundError("This tenant does not exist any more.")
        before = [tenant.retention_days, tenant.retention_runs]
        tenant.retention_days, tenant.retention_runs = days, runs
        if before != [days, runs]:
            audit.record(session, "tenant.retention_changed", tenant_id=tenant_id, actor_user_id=user_id,
                         target_type="tenant", target_id=tenant_id, before=before, after=[days, runs])  # fmt: skip
    return retention_of(db, tenant_id, default)


def save_report(client: redis.Redis, report: RetentionReport) -> None:
    pipe = client.pipeline(transaction=False)
    pipe.set(LAST_KEY, orjson.dumps(report))
    for name in ("runs", "steps", "logs", "dead_letters", "bytes_freed"):
        pipe.hincrby(TOTALS_KEY, name, getattr(report, name))
    pipe.hincrby(TOTALS_KEY, "jobs", 1)
    pipe.execute()


def last_report(client: redis.Redis) -> RetentionReport | None:
    raw = client.get(LAST_KEY)
    if not raw:
        return None
    doc = orjson.loads(raw)
    tenants = {k: TenantFreed(**v) for k, v in (doc.pop("tenants", None) or {}).items()}
    return RetentionReport(**doc, tenants=tenants)


def freed_for(report: RetentionReport | None, tenant_id: uuid.UUID) -> TenantFreed:
    if report is None:
        return TenantFreed()
    return report.tenants.get(runtime_id(tenant_id), TenantFreed())


def totals(client: redis.Redis) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in client.hgetall(TOTALS_KEY).items()}
