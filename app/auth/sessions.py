"""Browser login sessions stored in the database (they survive restarts of the web process).

The browser keeps an opaque token; the database keeps its hash, the user, the current tenant and the expiry.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.auth.passwords import verify_password
from app.auth.throttle import LoginThrottle
from app.auth.tokens import new_token, token_hash
from app.errors import AuthenticationError, NotFoundError
from app.services import audit
from app.services.accounts import TenantChoice, tenants_of
from app.storage.db import Database
from app.storage.models import Role, User, UserSession
from app.storage.scoping import system_session
from app.storage.types import utcnow

GENERIC_FAILURE = "Wrong e-mail or password."
TOUCH_INTERVAL = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class SessionInfo:
    """What the UI needs about the logged-in user; never holds secrets."""

    user_id: uuid.UUID
    email: str
    display_name: str
    is_superuser: bool
    tenant: TenantChoice | None
    tenants: list[TenantChoice]

    @property
    def role(self) -> Role | None:
        return self.tenant.role if self.tenant else None


def login(
    db: Database,
    throttle: LoginThrottle,
    email: str,
    password: str,
    *,
    session_days: int,
    ip: str | None = None,
    user_agent: str | None = None,
) -> str:
    """Check the password and open a session; returns the token for the browser.

    Raises RateLimitedError before checking when too many attempts failed, and AuthenticationError with one
    generic message for an unknown e-mail, a wrong password or a disabled account alike.
    """
    email = email.strip().lower()
    throttle.check(email, ip)
    with system_session(db.sessions) as session:
        user = session.scalar(sa.select(User).where(User.email == email))
        ok = verify_password(password, user.password_hash if user else None)
        if not (ok and user is not None and user.is_active):
            # The user, when the address is one: the tenants' admins see failed logins of their members.
            audit.record(session, "login.failed", ip=ip, email=email, target_type="user" if user else None,
                         target_id=user.id if user else None)  # fmt: skip
            failed = True
        else:
            failed = False
            token = open_session(session, db, user, session_days=session_days, ip=ip, user_agent=user_agent)
            audit.record(session, "login.succeeded", actor_user_id=user.id, ip=ip)
    if failed:
        throttle.record_failure(email, ip)
        raise AuthenticationError(GENERIC_FAILURE)
    throttle.reset(email)
    return token


def open_session(
    session: Session,
    db: Database,
    user: User,
    *,
    session_days: int,
    ip: str | None = None,
    user_agent: str | None = None,
) -> str:
    """A new browser session for a user already proven to be who they say (password or single sign-on)."""
    token = new_token("hs")
    tenants = tenants_of(db, user.id)
    now = utcnow()
    user.last_login_at = now
    session.add(
        UserSession(
            user_id=user.id,
            token_hash=token_hash(token),
            current_tenant_id=tenants[0].tenant_id if tenants else None,
            expires_at=now + dt.timedelta(days=session_days),
            ip=ip,
            user_agent=(user_agent or "")[:500] or None,
        )
    )
    return token


def resolve(db: Database, token: str | None) -> SessionInfo | None:
    """The session behind a browser token, or None when it is unknown, expired, revoked or the user is gone."""
    if not token:
        return None
    now = utcnow()
    with system_session(db.sessions) as session:
        row = session.execute(
            sa.select(UserSession, User)
            .join(User, User.id == UserSession.user_id)
            .where(UserSession.token_hash == token_hash(token))
        ).first()
        if row is None:
            return None
        user_session, user = row
        if user_session.revoked_at is not None or user_session.expires_at <= now or not user.is_active:
            return None
        if now - user_session.last_seen_at > TOUCH_INTERVAL:
            user_session.last_seen_at = now
        tenants = tenants_of(db, user.id)
        current = next((t for t in tenants if t.tenant_id == user_session.current_tenant_id), None)
        if current is None and tenants:
            current = tenants[0]
            user_session.current_tenant_id = current.tenant_id
        return SessionInfo(
            user_id=user.id,
            email=user.email,
            display_name=user.display_name,
            is_superuser=user.is_superuser,
            tenant=current,
            tenants=tenants,
        )


def logout(db: Database, token: str | None) -> None:
    if not token:
        return
    with system_session(db.sessions) as session:
        user_session = session.scalar(
            sa.select(UserSession).where(UserSession.token_hash == token_hash(token))
        )
        if user_session is not None and user_session.revoked_at is None:
            user_session.revoked_at = utcnow()
            audit.record(session, "logout", actor_user_id=user_session.user_id)


def switch_tenant(db: Database, token: str, tenant_id: uuid.UUID) -> SessionInfo:
    """Make another of the user's tenants current. A tenant the user is not a member of is 'not found'."""
    info = resolve(db, token)
    if info is None:
        raise AuthenticationError("Your session has ended; log in again.")
    if not any(t.tenant_id == tenant_id for t in info.tenants):
        raise NotFoundError("No such tenant.")
    with system_session(db.sessions) as session:
        session.execute(
            sa.update(UserSession)
            .where(UserSession.token_hash == token_hash(token))
            .values(current_tenant_id=tenant_id)
        )
    refreshed = resolve(db, token)
    assert refreshed is not None
    return refreshed
