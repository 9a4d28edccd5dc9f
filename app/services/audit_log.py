"""Reading the audit log: a tenant's events and its members' logins, for its owners and admins; the hub-wide
events too for hub administrators."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from app.errors import ValidationError
from app.services.members import ADMINS, require_role
from app.storage.db import Database
from app.storage.models import AuditEvent, Membership, User
from app.storage.scoping import tenant_session

CATEGORIES = {
    "login": ("login.", "user.sso"),
    "members": ("member.", "invitation."),
    "tokens": ("token.",),
    "credentials": ("credential.", "oauth_client."),
    "flows": ("flow.", "webhook."),
    "components": ("component.",),
    "settings": ("tenant.", "hub."),
}
PAGE = 100
# Events outside any tenant that concern one of its members: their logins.
MEMBER_EVENTS = ("login.succeeded", "login.failed", "user.sso_linked")


@dataclass(frozen=True)
class AuditFilter:
    category: str = ""  # a key of CATEGORIES; "" for all
    actor: str = ""  # part of the actor's e-mail
    since: dt.datetime | None = None
    until: dt.datetime | None = None


@dataclass(frozen=True)
class AuditRow:
    id: int
    ts: dt.datetime
    action: str
    actor: str  # the actor's e-mail; "the hub" for its own work
    target_type: str
    target_id: str
    details: dict[str, Any]
    ip: str


def list_events(
    db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID, where: AuditFilter = AuditFilter(),
    *, before_id: int | None = None, limit: int = PAGE,
) -> list[AuditRow]:  # fmt: skip
    """Newest first, a page at a time (`before_id`: the last id of the previous page). For the tenant's owners and
    admins: its events and its members' logins; a hub administrator also sees the hub-wide events."""
    if where.category and where.category not in CATEGORIES:
        raise ValidationError(f"Unknown category {where.category!r}; use one of {', '.join(CATEGORIES)}.")
    with tenant_session(db.sessions, tenant_id) as session:
        require_role(session, user_id, ADMINS, "read the audit log")
        superuser = bool(session.scalar(sa.select(User.is_superuser).where(User.id == user_id)))
        # In Python: target_id holds the id as text, and the databases spell a UUID as text differently.
        member_ids = list(session.scalars(sa.select(Membership.user_id)))
        about_members = sa.and_(
            AuditEvent.action.in_(MEMBER_EVENTS),
            sa.or_(
                AuditEvent.actor_user_id.in_(member_ids),
                AuditEvent.target_id.in_([str(m) for m in member_ids]),
            ),
        )
        hub_wide = sa.true() if superuser else about_members
        query = (
            sa.select(AuditEvent, User.email)
            .outerjoin(User, User.id == AuditEvent.actor_user_id)
            .where(
                sa.or_(AuditEvent.tenant_id == tenant_id, sa.and_(AuditEvent.tenant_id.is_(None), hub_wide))
            )
        )
        if where.category:
            query = query.where(
                sa.or_(*(AuditEvent.action.startswith(p) for p in CATEGORIES[where.category]))
            )
        if where.actor.strip():
            query = query.where(
                sa.func.lower(User.email).contains(where.actor.strip().lower(), autoescape=True)
            )
        if where.since is not None:
            query = query.where(AuditEvent.ts >= where.since)
        if where.until is not None:
            query = query.where(AuditEvent.ts < where.until)
        if before_id is not None:
            query = query.where(AuditEvent.id < before_id)
        rows = session.execute(query.order_by(AuditEvent.id.desc()).limit(max(1, min(limit, 500)))).all()
        return [AuditRow(e.id, e.ts, e.action, email or (str(e.details.get("email", "")) if e.details else "")
                         or "the hub", e.target_type or "", e.target_id or "", dict(e.details or {}), e.ip or "")
                for e, email in rows]  # fmt: skip
