"""Invitation links: an owner or admin makes a link that turns whoever opens it (only the named e-mail address,
when one is given) into a member with the chosen role. Used once, expiring, revocable; only its hash is kept."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.auth.passwords import hash_password, password_problem
from app.auth.tokens import new_token, token_hash
from app.errors import NotFoundError, PermissionDeniedError, ValidationError
from app.services import audit
from app.services.accounts import normalise_email
from app.services.members import ADMINS, may_grant, parse_role, require_role
from app.storage.db import Database
from app.storage.models import Invitation, Membership, Role, Tenant, User
from app.storage.scoping import system_session, tenant_session
from app.storage.types import utcnow

TOKEN_PREFIX = "hub_inv"  # noqa: S105 - a label in front of every link, not a secret
MAX_HOURS = 30 * 24
INVITE_PATH = "/invite/"
GONE = "This invitation link is not valid any more (used, revoked or expired); ask for a new one."


@dataclass(frozen=True)
class InvitationView:
    id: uuid.UUID
    role: Role
    email: str | None
    created_by: str
    created_at: dt.datetime
    expires_at: dt.datetime
    state: str  # pending, accepted, revoked, expired


@dataclass(frozen=True)
class InvitationPreview:
    """What the invitation page shows before accepting."""

    tenant_name: str
    role: Role
    email: str | None
    invited_by: str


def _state(row: Invitation, now: dt.datetime) -> str:
    if row.accepted_at is not None:
        return "accepted"
    if row.revoked_at is not None:
        return "revoked"
    return "expired" if row.expires_at <= now else "pending"


def invite(
    db: Database,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    role: Role | str,
    *,
    email: str = "",
    expires_in_hours: int = 72,
) -> tuple[str, InvitationView]:
    """A new invitation; returns its token (the link is INVITE_PATH + token), which is never shown again."""
    role = parse_role(role)
    if not 1 <= expires_in_hours <= MAX_HOURS:
        raise ValidationError(f"An invitation expires after 1 hour to {MAX_HOURS // 24} days.")
    address = normalise_email(email) if email.strip() else None
    token = new_token(TOKEN_PREFIX)
    with tenant_session(db.sessions, tenant_id) as session:
        actor = require_role(session, user_id, ADMINS, "invite members")
        if not may_grant(actor, role):
            raise PermissionDeniedError("Only an owner can invite an owner.")
        if address and session.scalar(
            sa.select(Membership.id).join(User, User.id == Membership.user_id).where(User.email == address)
        ):
            raise ValidationError(f"{address} is already a member of this tenant.")
        row = Invitation(tenant_id=tenant_id, token_hash=token_hash(token), role=role.value, email=address,
                         created_by=user_id, expires_at=utcnow() + dt.timedelta(hours=expires_in_hours))  # fmt: skip
        session.add(row)
        session.flush()
        audit.record(session, "member.invited", tenant_id=tenant_id, actor_user_id=user_id,
                     target_type="invitation", target_id=row.id, role=role.value, email=address)  # fmt: skip
        creator = session.scalar(sa.select(User.email).where(User.id == user_id)) or ""
        return token, InvitationView(
            row.id, role, address, creator, row.created_at, row.expires_at, "pending"
        )


def list_invitations(db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID) -> list[InvitationView]:
    """The invitations of the last 30 days, newest first."""
    now = utcnow()
    with tenant_session(db.sessions, tenant_id) as session:
        require_role(session, user_id, ADMINS, "see invitations")
        rows = session.execute(
            sa.select(Invitation, User.email)
            .outerjoin(User, User.id == Invitation.created_by)
            .where(Invitation.created_at >= now - dt.timedelta(days=30))
            .order_by(Invitation.created_at.desc())
        ).all()
        return [InvitationView(r.id, Role(r.role), r.email, email or "a removed user", r.created_at, r.expires_at,
                               _state(r, now)) for r, email in rows]  # fmt: skip


def revoke_invitation(
    db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID, invitation_id: uuid.UUID
) -> None:
    with tenant_session(db.sessions, tenant_id) as session:
        require_role(session, user_id, ADMINS, "revoke invitations")
        row = session.get(Invitation, invitation_id)
        if row is None:
            raise NotFoundError("This invitation does not exist (or belongs to another tenant).")
        if row.accepted_at is not None:
            raise ValidationError("This invitation was accepted already; remove the member instead.")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            audit.record(session, "invitation.revoked", tenant_id=tenant_id, actor_user_id=user_id,
                         target_type="invitation", target_id=row.id)  # fmt: skip


def _pending(session, token: str) -> Invitation:
    if not token.startswith(TOKEN_PREFIX + "_") or len(token) > 200:
        raise NotFoundError(GONE)
    row = session.scalar(sa.select(Invitation).where(Invitation.token_hash == token_hash(token)))
    if row is None or _state(row, utcnow()) != "pending":
        raise NotFoundError(GONE)
    return row


def preview(db: Database, token: str) -> InvitationPreview:
    with system_session(db.sessions) as session:
        row = _pending(session, token)
        tenant = session.get(Tenant, row.tenant_id)
        inviter = (
            session.scalar(sa.select(User.display_name).where(User.id == row.created_by))
            or "an administrator"
        )
        return InvitationPreview(tenant.name if tenant else "", Role(row.role), row.email, inviter)


def _still_allowed(session, row: Invitation) -> None:
    """The inviter must still be a member who may grant the role: a link made by someone removed or demoted
    since is void (else an admin about to be removed could keep a way back in)."""
    creator_role = session.scalar(
        sa.select(Membership.role).where(
            Membership.user_id == row.created_by, Membership.tenant_id == row.tenant_id
        )
    )
    if creator_role is None or not may_grant(Role(creator_role), Role(row.role)):
        raise NotFoundError(
            "The person who made this invitation may no longer invite with it; ask for a new one."
        )


def _join(session, row: Invitation, user: User) -> uuid.UUID:
    if row.email and row.email != user.email:
        raise PermissionDeniedError(
            f"This invitation is for {row.email}; you are logged in as {user.email}. Log out and open the link again."
        )
    _still_allowed(session, row)
    if session.scalar(
        sa.select(Membership.id).where(Membership.user_id == user.id, Membership.tenant_id == row.tenant_id)
    ):
        raise ValidationError("You are already a member of this tenant.")
    # Claimed by one conditional update: of two people opening the same link at once, one gets in.
    claimed = session.execute(
        sa.update(Invitation)
        .where(Invitation.id == row.id, Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
        .values(accepted_at=utcnow(), accepted_by=user.id)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        raise NotFoundError(GONE)
    session.add(Membership(tenant_id=row.tenant_id, user_id=user.id, role=row.role))
    audit.record(session, "member.joined", tenant_id=row.tenant_id, actor_user_id=user.id, target_type="user",
                 target_id=user.id, role=row.role, invitation=str(row.id))  # fmt: skip
    return row.tenant_id


def accept(db: Database, token: str, user_id: uuid.UUID) -> uuid.UUID:
    """Make the user a member; returns the tenant's id. Refused for another address than the one invited."""
    try:
        with system_session(db.sessions) as session:
            row = _pending(session, token)
            user = session.get(User, user_id)
            if user is None or not user.is_active:
                raise NotFoundError(GONE)
            return _join(session, row, user)
    except IntegrityError:  # two tabs accepting at once
        raise ValidationError("You are already a member of this tenant.") from None


def accept_as_new_user(
    db: Database, token: str, email: str, password: str, display_name: str = ""
) -> uuid.UUID:
    """Create an account and join with it, in one transaction, only through a pending invitation (for its
    address, when it names one): the hub has no open sign-up. Returns the tenant's id."""
    address = normalise_email(email)
    if problem := password_problem(password):
        raise ValidationError(problem)
    try:
        with system_session(db.sessions) as session:
            row = _pending(session, token)
            if row.email and row.email != address:
                raise PermissionDeniedError(f"This invitation is for {row.email}; sign up with that address.")
            _still_allowed(session, row)
            if session.scalar(sa.select(User.id).where(User.email == address)) is not None:
                raise ValidationError(f"An account with {address} exists already: log in to join.")
            user = User(email=address, display_name=display_name.strip() or address.split("@")[0],
                        password_hash=hash_password(password))  # fmt: skip
            session.add(user)
            session.flush()
            audit.record(session, "user.created", actor_user_id=user.id, target_type="user", target_id=user.id,
                         email=address, invitation=str(row.id))  # fmt: skip
            return _join(session, row, user)
    except IntegrityError:  # the same address signing up twice at once
        raise ValidationError(f"An account with {address} exists already: log in to join.") from None
