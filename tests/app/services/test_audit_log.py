"""The audit log as admins read it: their tenant's events and their members' logins (never another tenant's or a
stranger's), filtered by category, actor and period, a page at a time; hub-wide events for hub administrators."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid

import pytest
import redis as redis_lib

from app.auth import sessions
from app.auth.throttle import LoginThrottle
from app.errors import AuthenticationError, PermissionDeniedError, ValidationError
from app.services import accounts, api_tokens, audit_log, invitations
from app.services.audit_log import AuditFilter

PASSWORD = "a long password!!"


@pytest.fixture
def setup(db, redis: redis_lib.Redis):
    a = accounts.create_tenant(db, f"A {uuid.uuid4().hex[:6]}").id
    b = accounts.create_tenant(db, f"B {uuid.uuid4().hex[:6]}").id
    people = {}
    for name, tenant, role in (("owner", a, "owner"), ("viewer", a, "viewer"), ("stranger", b, "owner")):
        people[name] = accounts.create_user(db, f"{name}@example.com", PASSWORD).id
        accounts.add_member(db, tenant, people[name], role)
    throttle = LoginThrottle(redis, 100, 60)
    for email, password in (("viewer@example.com", PASSWORD), ("viewer@example.com", "wrong password!!"),
                            ("stranger@example.com", PASSWORD), ("stranger@example.com", "nope nope nope"),
                            ("nobody@example.com", "whatever it is")):  # fmt: skip
        with contextlib.suppress(AuthenticationError):
            sessions.login(db, throttle, email, password, session_days=1, ip="127.0.0.1")
    api_tokens.create_token(db, a, people["viewer"], "script", ["read"], expires_in_days=1)
    api_tokens.create_token(db, b, people["stranger"], "theirs", ["read"], expires_in_days=1)
    invitations.invite(db, a, people["owner"], "editor")
    return a, b, people


def test_admins_see_their_tenants_events_and_their_members_logins_only(db, setup) -> None:
    a, _, people = setup
    rows = audit_log.list_events(db, a, people["owner"])
    seen = [(r.action, r.actor) for r in rows]
    assert ("login.succeeded", "viewer@example.com") in seen and (
        "login.failed",
        "viewer@example.com",
    ) in seen
    assert ("token.created", "viewer@example.com") in seen and ("member.invited", "owner@example.com") in seen
    assert all("stranger" not in r.actor and "nobody" not in r.actor for r in rows)
    assert "theirs" not in str([r.details for r in rows])
    assert [r.id for r in rows] == sorted((r.id for r in rows), reverse=True)


def test_filters_and_pages(db, setup) -> None:
    a, _, people = setup
    logins = audit_log.list_events(db, a, people["owner"], AuditFilter(category="login"))
    assert {r.action for r in logins} == {"login.succeeded", "login.failed"}
    by_viewer = audit_log.list_events(db, a, people["owner"], AuditFilter(actor="VIEWER@"))
    assert by_viewer and all(r.actor == "viewer@example.com" for r in by_viewer)
    future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert audit_log.list_events(db, a, people["owner"], AuditFilter(since=future)) == []
    everything = audit_log.list_events(db, a, people["owner"])
    first = audit_log.list_events(db, a, people["owner"], limit=2)
    second = audit_log.list_events(db, a, people["owner"], before_id=first[-1].id, limit=2)
    assert [r.id for r in first + second] == [r.id for r in everything[:4]]
    with pytest.raises(ValidationError, match="Unknown category"):
        audit_log.list_events(db, a, people["owner"], AuditFilter(category="secrets"))


def test_only_owners_and_admins_read_it_and_hub_admins_see_hub_wide_events(db, setup) -> None:
    a, _, people = setup
    with pytest.raises(PermissionDeniedError):
        audit_log.list_events(db, a, people["viewer"])
    with pytest.raises(PermissionDeniedError):
        audit_log.list_events(db, a, people["stranger"])
    assert not any(
        r.action == "tenant.created"
        for r in audit_log.list_events(db, a, people["owner"])
        if r.target_id != str(a)
    )
    admin = accounts.create_user(db, "root@example.com", PASSWORD, is_superuser=True).id
    accounts.add_member(db, a, admin, "admin")
    actions = {r.action for r in audit_log.list_events(db, a, admin, limit=500)}
    assert {"tenant.created", "user.created"} <= actions
    assert "nobody@example.com" in {r.actor for r in audit_log.list_events(db, a, admin, limit=500)}
