"""API tokens: shown once and stored hashed, scopes enforced, expiry and revocation, the member's current role
capping what a token may do, last-used time."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from app.auth.tokens import token_hash
from app.errors import NotFoundError, PermissionDeniedError, ValidationError
from app.services import api_tokens
from app.storage.models import ApiToken, AuditEvent, Membership
from app.storage.scoping import system_session
from tests.app.api.conftest import ApiWorld, unknown_ids


def _row(world: ApiWorld, token: str) -> ApiToken:
    with system_session(world.hub.db.sessions) as session:
        row = session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == token_hash(token)))
        session.expunge(row)
        return row


def test_a_token_is_shown_once_and_only_its_hash_is_kept(world: ApiWorld) -> None:
    token, view = api_tokens.create_token(world.hub.db, world.tenant_a, world.users["owner_a"], "CI deploy",
                                          ["read", "run"], expires_in_days=7)  # fmt: skip
    assert token.startswith("hub_pat_") and len(token) > 40
    assert view.scopes == ("read", "run") and view.state == "active" and token.startswith(view.prefix)
    with system_session(world.hub.db.sessions) as session:
        stored = session.execute(sa.select(ApiToken.token_hash, ApiToken.token_prefix)).all()
        events = session.scalars(sa.select(AuditEvent.action)).all()
    assert all(token not in repr(row) for row in stored) and (token_hash(token), view.prefix) in stored
    assert "token.created" in events
    listed = api_tokens.list_tokens(world.hub.db, world.tenant_a, world.users["owner_a"])
    assert [t.name for t in listed] == ["CI deploy"] and token not in repr(listed)
    assert 6 <= (listed[0].expires_at.replace(tzinfo=dt.UTC) - dt.datetime.now(dt.UTC)).days <= 7


@pytest.mark.parametrize(
    ("scopes", "allowed"),
    [
        (["read"], {"read"}),
        (["write"], {"write"}),
        (["run"], {"run"}),
        (["read", "write", "run"], {"read", "write", "run"}),
    ],
)
def test_scopes_are_enforced(world: ApiWorld, scopes, allowed) -> None:
    flow_id = world.hub.flow([{"id": "start", "component": "manual", "function": "start"}], [])
    headers = world.headers(world.token("editor_a", world.tenant_a, scopes))
    read = world.client.get("/api/v1/flows", headers=headers)
    write = world.client.patch(f"/api/v1/flows/{flow_id}", json={"name": "Renamed"}, headers=headers)
    run = world.client.post(f"/api/v1/flows/{flow_id}/runs", json={"data": {}}, headers=headers)
    answers = {"read": read, "write": write, "run": run}
    for scope, answer in answers.items():
        if scope in allowed:
            assert answer.status_code < 300, (scope, answer.text)
        else:
            assert answer.status_code == 403, (scope, answer.text)
            assert answer.json()["code"] == "forbidden" and f"'{scope}' scope" in answer.json()["message"]


def test_missing_malformed_expired_and_revoked_tokens_are_refused(world: ApiWorld) -> None:
    def status(headers: dict) -> tuple[int, str]:
        answer = world.client.get("/api/v1/flows", headers=headers)
        return answer.status_code, answer.json()["code"]

    assert status({}) == (401, "unauthenticated")
    assert world.client.get("/api/v1/flows").headers["www-authenticate"] == "Bearer"
    assert status({"Authorization": "Basic dXNlcjpwdw=="}) == (401, "unauthenticated")
    assert status({"Authorization": "Bearer hub_pat_not-a-real-one"}) == (401, "unauthenticated")
    assert status({"Authorization": "Bearer " + "x" * 5000}) == (401, "unauthenticated")

    live = world.token("owner_a", world.tenant_a)
    assert world.client.get("/api/v1/flows", headers=world.headers(live)).status_code == 200

    expired = world.token("owner_a", world.tenant_a, days=1)
    with system_session(world.hub.db.sessions) as session:
        row = session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == token_hash(expired)))
        row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    assert status(world.headers(expired)) == (401, "unauthenticated")

    revoked = world.token("owner_a", world.tenant_a)
    api_tokens.revoke_token(world.hub.db, world.tenant_a, world.users["owner_a"], _row(world, revoked).id)
    assert status(world.headers(revoked)) == (401, "unauthenticated")
    assert world.client.get("/api/v1/flows", headers=world.headers(live)).status_code == 200


def test_a_token_never_does_more_than_its_owner_may_now(world: ApiWorld) -> None:
    flow_id = world.hub.flow([{"id": "start", "component": "manual", "function": "start"}], [])
    token = world.token("editor_a", world.tenant_a)
    rename = {"name": "By the editor"}
    assert world.client.patch(
        f"/api/v1/flows/{flow_id}", json=rename, headers=world.headers(token)
    ).is_success
    # Demoted to viewer: the same token reads but no longer writes.
    with system_session(world.hub.db.sessions) as session:
        session.execute(
            sa.update(Membership).where(Membership.user_id == world.users["editor_a"]).values(role="viewer")
        )
    answer = world.client.patch(f"/api/v1/flows/{flow_id}", json=rename, headers=world.headers(token))
    assert answer.status_code == 403 and "viewer" in answer.json()["message"]
    assert world.client.get("/api/v1/flows", headers=world.headers(token)).status_code == 200
    # Removed from the tenant: the token stops working altogether.
    with system_session(world.hub.db.sessions) as session:
        session.execute(sa.delete(Membership).where(Membership.user_id == world.users["editor_a"]))
    assert world.client.get("/api/v1/flows", headers=world.headers(token)).status_code == 401


def test_a_token_works_only_in_its_own_tenant(world: ApiWorld) -> None:
    world.hub.flow(
        [{"id": "start", "component": "manual", "function": "start"}], [], tenant_id=world.tenant_b
    )
    token = world.token("owner_a", world.tenant_a)
    assert world.client.get("/api/v1/flows", headers=world.headers(token)).json() == []


def test_last_used_is_recorded_but_not_written_on_every_request(world: ApiWorld) -> None:
    token = world.token("owner_a", world.tenant_a)
    assert _row(world, token).last_used_at is None
    world.client.get("/api/v1/flows", headers=world.headers(token))
    first = _row(world, token).last_used_at
    assert first is not None
    world.client.get("/api/v1/flows", headers=world.headers(token))
    assert _row(world, token).last_used_at == first
    with system_session(world.hub.db.sessions) as session:
        session.execute(
            sa.update(ApiToken).values(last_used_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
        )
    world.client.get("/api/v1/flows", headers=world.headers(token))
    assert _row(world, token).last_used_at.replace(tzinfo=dt.UTC) > dt.datetime.now(dt.UTC) - dt.timedelta(
        minutes=1
    )


def test_who_sees_and_revokes_which_tokens(world: ApiWorld) -> None:
    db, a = world.hub.db, world.tenant_a
    world.token("editor_a", a)
    world.token("viewer_a", a)
    assert {t.user_email.split("-")[0] for t in api_tokens.list_tokens(db, a, world.users["owner_a"])} == {
        "editor_a", "viewer_a"
    }  # fmt: skip
    [own] = api_tokens.list_tokens(db, a, world.users["viewer_a"])
    [editors] = api_tokens.list_tokens(db, a, world.users["editor_a"])
    with pytest.raises(PermissionDeniedError, match="another member's token"):
        api_tokens.revoke_token(db, a, world.users["viewer_a"], editors.id)
    assert api_tokens.revoke_token(db, a, world.users["viewer_a"], own.id).state == "revoked"
    assert api_tokens.revoke_token(db, a, world.users["owner_a"], editors.id).state == "revoked"
    with pytest.raises(NotFoundError):
        api_tokens.revoke_token(db, world.tenant_b, world.users["owner_b"], own.id)
    with pytest.raises(NotFoundError):
        api_tokens.list_tokens(db, world.tenant_b, world.users["owner_a"])


@pytest.mark.parametrize(
    ("name", "scopes", "days", "message"),
    [
        ("", ["read"], 30, "Name the token"),
        ("x", [], 30, "at least one scope"),
        ("x", ["admin"], 30, "Unknown scope 'admin'"),
        ("x", ["read"], 0, "1 to 3650 days"),
        ("x", ["read"], 5000, "1 to 3650 days"),
    ],
)
def test_bad_token_requests_say_what_to_fix(world: ApiWorld, name, scopes, days, message) -> None:
    with pytest.raises(ValidationError, match=message):
        api_tokens.create_token(world.hub.db, world.tenant_a, world.users["owner_a"], name, scopes,
                                expires_in_days=days)  # fmt: skip


def test_a_token_without_expiry_and_for_a_non_member_is_refused(world: ApiWorld) -> None:
    token, view = api_tokens.create_token(world.hub.db, world.tenant_a, world.users["owner_a"], "forever", ["read"],
                                          expires_in_days=None)  # fmt: skip
    assert (
        view.expires_at is None and world.client.get("/api/v1/flows", headers=world.headers(token)).is_success
    )
    with pytest.raises(NotFoundError):
        api_tokens.create_token(world.hub.db, world.tenant_b, world.users["owner_a"], "x", ["read"],
                                expires_in_days=1)  # fmt: skip


RUN_ROUTES = {
    ("POST", "/api/v1/flows/{flow_id}/runs"),
    ("POST", "/api/v1/runs/{run_id}/replay"),
    ("POST", "/api/v1/dead-letters/{dead_letter_id}/replay"),
}


@pytest.mark.parametrize("scope", ["read", "write", "run"])
def test_every_route_refuses_a_token_without_its_scope(world: ApiWorld, scope: str) -> None:
    """Built from the served document: a new route is checked without being listed here (unless it starts runs,
    then RUN_ROUTES must name it)."""
    token = world.headers(world.token("owner_a", world.tenant_a, [scope]))
    paths = world.client.get("/api/v1/openapi.json").json()["paths"]
    ids = unknown_ids()
    refused = allowed = 0
    for path, operations in paths.items():
        for method in operations:
            needs = "read" if method == "get" else "run" if (method.upper(), path) in RUN_ROUTES else "write"
            answer = world.client.request(method.upper(), path.format(**ids), json={}, headers=token)
            if needs == scope:
                assert answer.status_code != 403 or "scope" not in answer.text, (method, path, answer.text)
                allowed += 1
            else:
                assert answer.status_code == 403 and f"'{needs}' scope" in answer.json()["message"], (
                    method,
                    path,
                )
                refused += 1
    assert refused >= 10 and allowed >= 3
