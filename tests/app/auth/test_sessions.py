"""Login sessions: generic failures, throttling, expiry, revocation, tenant switching, restart survival."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from app.auth import sessions
from app.auth.throttle import LoginThrottle
from app.errors import AuthenticationError, NotFoundError, RateLimitedError
from app.services import accounts
from app.storage import models as m
from app.storage.db import Database
from app.storage.scoping import system_session
from app.storage.types import utcnow

PASSWORD = "correct horse battery"


@pytest.fixture
def throttle(redis) -> LoginThrottle:
    return LoginThrottle(redis, max_failures=3, window_seconds=60)


@pytest.fixture
def alice(db: Database) -> m.User:
    user = accounts.create_user(db, "Alice@Example.com", PASSWORD, "Alice")
    acme = accounts.create_tenant(db, "Acme")
    beta = accounts.create_tenant(db, "Beta Corp")
    accounts.add_member(db, acme.id, user.id, "owner")
    accounts.add_member(db, beta.id, user.id, "viewer")
    return user


def _login(db: Database, throttle: LoginThrottle, email: str, password: str) -> str:
    return sessions.login(db, throttle, email, password, session_days=14, ip="127.0.0.1")


def test_login_resolves_to_user_and_first_tenant(db: Database, throttle, alice) -> None:
    token = _login(db, throttle, "alice@example.com", PASSWORD)
    info = sessions.resolve(db, token)
    assert info is not None
    assert info.email == "alice@example.com"
    assert [t.name for t in info.tenants] == ["Acme", "Beta Corp"]
    assert info.tenant.name == "Acme"
    assert info.role == m.Role.OWNER


def test_token_is_not_stored_in_clear(db: Database, throttle, alice) -> None:
    token = _login(db, throttle, "alice@example.com", PASSWORD)
    with system_session(db.sessions) as session:
        stored = session.scalars(sa.select(m.UserSession.token_hash)).all()
    assert token not in stored
    assert len(stored) == 1


@pytest.mark.parametrize(
    ("email", "password"),
    [("alice@example.com", "wrong password!"), ("nobody@example.com", PASSWORD)],
    ids=["wrong-password", "unknown-email"],
)
def test_failure_is_generic_and_opens_no_session(db: Database, throttle, alice, email, password) -> None:
    with pytest.raises(AuthenticationError) as caught:
        _login(db, throttle, email, password)
    assert str(caught.value) == "Wrong e-mail or password."
    with system_session(db.sessions) as session:
        assert session.scalar(sa.select(sa.func.count(m.UserSession.id))) == 0
        assert session.scalar(sa.select(m.AuditEvent.action).where(m.AuditEvent.action == "login.failed"))


def test_disabled_account_cannot_log_in(db: Database, throttle, alice) -> None:
    with system_session(db.sessions) as session:
        session.get(m.User, alice.id).is_active = False
    with pytest.raises(AuthenticationError, match=r"Wrong e-mail or password\."):
        _login(db, throttle, "alice@example.com", PASSWORD)


def test_attempts_are_limited_even_with_the_right_password(db: Database, throttle, alice) -> None:
    for _ in range(3):
        with pytest.raises(AuthenticationError):
            _login(db, throttle, "alice@example.com", "wrong password!")
    with pytest.raises(RateLimitedError):
        _login(db, throttle, "alice@example.com", PASSWORD)


def test_expired_and_revoked_sessions_do_not_resolve(db: Database, throttle, alice) -> None:
    token = _login(db, throttle, "alice@example.com", PASSWORD)
    with system_session(db.sessions) as session:
        session.execute(sa.update(m.UserSession).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    assert sessions.resolve(db, token) is None

    token = _login(db, throttle, "alice@example.com", PASSWORD)
    sessions.logout(db, token)
    assert sessions.resolve(db, token) is None
    assert sessions.resolve(db, "hs_forged") is None
    assert sessions.resolve(db, "") is None


def test_session_survives_a_new_database_connection(db: Database, throttle, alice) -> None:
    """A restarted web process has no memory of the login; the database row is what counts."""
    token = _login(db, throttle, "alice@example.com", PASSWORD)
    fresh = Database.connect(db.engine.url.render_as_string(hide_password=False))
    try:
        assert sessions.resolve(fresh, token).email == "alice@example.com"
    finally:
        fresh.dispose()


def test_switch_tenant(db: Database, throttle, alice) -> None:
    token = _login(db, throttle, "alice@example.com", PASSWORD)
    beta = next(t for t in sessions.resolve(db, token).tenants if t.name == "Beta Corp")
    info = sessions.switch_tenant(db, token, beta.tenant_id)
    assert info.tenant.name == "Beta Corp"
    assert info.role == m.Role.VIEWER
    assert sessions.resolve(db, token).tenant.name == "Beta Corp"


def test_switch_to_foreign_tenant_is_not_found(db: Database, throttle, alice) -> None:
    other = accounts.create_tenant(db, "Other")
    token = _login(db, throttle, "alice@example.com", PASSWORD)
    with pytest.raises(NotFoundError):
        sessions.switch_tenant(db, token, other.id)
    assert sessions.resolve(db, token).tenant.name == "Acme"
