"""A tenant's members: who is acting and may they (the role read from the database at the moment of the action,
not as it was when their page loaded), and changing roles and removing members."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.errors import NotFoundError, PermissionDeniedError, ValidationError
from app.services import audit
from app.storage.db import Database
from app.storage.models import ApiToken, Invitation, Membership, Role, User
from app.storage.scoping import tenant_session
from app.storage.types import utcnow

EDITORS = (Role.OWNER, Role.ADMIN, Role.EDITOR)
ADMINS = (Role.OWNER, Role.ADMIN)


def parse_role(value: Role | str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ValidationError(
            f"Unknown role {value!r}; use one of {', '.join(r.value for r in Role)}."
        ) from None


def role_of(session: Session, user_id: uuid.UUID | None) -> Role | None:
    """The user's role in the session's tenant; None when they are not a member (or no user is given)."""
    if user_id is None:
        return None
    found = session.scalar(sa.select(Membership.role).where(Membership.user_id == user_id).limit(1))
    return Role(found) if found else None


def require_role(session: Session, user_id: uuid.UUID | None, allowed: tuple[Role, ...], doing: str) -> Role:
    role = role_of(session, user_id)
    if role not in allowed:
        needed = " or ".join(r.value for r in allowed)
        raise PermissionDeniedError(
            f"Your role here ({role.value if role else 'none'}) cannot {doing}; this needs {needed}."
        )
    return role


@dataclass(frozen=True)
class Member:
    user_id: uuid.UUID
    email: str
    display_name: str
    role: Role
    joined_at: dt.datetime
    last_login_at: dt.datetime | None


def members_of(db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID) -> list[Member]:
    """The tenant's members, for any member to see (who to ask for what)."""
    with tenant_session(db.sessions, tenant_id) as session:
        if role_of(session, user_id) is None:
            raise NotFoundError("You are not a member of this tenant.")
        rows = session.execute(
            sa.select(User.id, User.email, User.display_name, Membership.role, Membership.created_at,
                      User.last_login_at)
            .join(Membership, Membership.user_id == User.id)
            .order_by(User.email)
        ).all()  # fmt: skip
    return [Member(r.id, r.email, r.display_name, Role(r.role), r.created_at, r.last_login_at) for r in rows]


def may_grant(actor: Role, role: Role) -> bool:
    """Owners grant any role; admins any but owner (an admin cannot make the owners' decisions)."""
    return actor == Role.OWNER or (actor == Role.ADMIN and role != Role.OWNER)


def _membership(session: Session, member_id: uuid.UUID) -> Membership:
    found = session.scalar(sa.select(Membership).where(Membership.user_id == member_id))
    if found is None:
        raise NotFoundError("This person is not a member of this tenant.")
    return found


def _keep_an_owner(session: Session, membership: Membership) -> None:
    if membership.role != Role.OWNER.value:
        return
    # The owners' rows locked (PostgreSQL): two owners demoting each other at once are served one after the
    # other, and the second sees one owner left. SQLite lets one writer in at a time anyway.
    owners = session.scalars(
        sa.select(Membership.id).where(Membership.role == "owner").with_for_update()
    ).all()
    if len(owners) <= 1:
        raise ValidationError("A tenant keeps at least one owner: make someone else owner first.")


def _revoke_invitations(session: Session, member_id: uuid.UUID) -> None:
    """The pending invitations a member made, once they may no longer invite (accepting checks it too)."""
    session.execute(
        sa.update(Invitation)
        .where(
            Invitation.created_by == member_id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )


def change_role(
    db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID, member_id: uuid.UUID, role: Role | str
) -> Member:
    role = parse_role(role)
    with tenant_session(db.sessions, tenant_id) as session:
        actor = require_role(session, user_id, ADMINS, "change members' roles")
        membership = _membership(session, member_id)
        old = Role(membership.role)
        if not (may_grant(actor, role) and may_grant(actor, old)):
            raise PermissionDeniedError("Only an owner can make someone owner or change an owner's role.")
        if old != role:
            if old == Role.OWNER:
                _keep_an_owner(session, membership)
            membership.role = role.value
            if role not in ADMINS:
                _revoke_invitations(session, member_id)
            audit.record(session, "member.role_changed", tenant_id=tenant_id, actor_user_id=user_id,
                         target_type="user", target_id=member_id, old=old.value, new=role.value)  # fmt: skip
    return next(m for m in members_of(db, tenant_id, user_id) if m.user_id == member_id)


def remove_member(db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID, member_id: uuid.UUID) -> None:
    """Owners and admins remove members (only owners remove owners); anyone may leave. The member's sessions in
    this tenant and API tokens stop working at their next request: both are checked against the membership."""
    with tenant_session(db.sessions, tenant_id) as session:
        membership = _membership(session, member_id)
        if member_id != user_id:
            actor = require_role(session, user_id, ADMINS, "remove members")
            if not may_grant(actor, Role(membership.role)):
                raise PermissionDeniedError("Only an owner can remove an owner.")
        _keep_an_owner(session, membership)
        session.delete(membership)
        _revoke_invitations(session, member_id)
        session.execute(
            sa.update(ApiToken)
            .where(ApiToken.user_id == member_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        audit.record(session, "member.removed", tenant_id=tenant_id, actor_user_id=user_id,
                     target_type="user", target_id=member_id, role=membership.role)  # fmt: skip
