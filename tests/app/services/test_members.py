"""Members and roles: invitation links (single use, expiring, revocable, for one address when named), role
changes within what the actor may grant, removal, a tenant never without an owner, and the audit of each."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from app.errors import NotFoundError, PermissionDeniedError, ValidationError
from app.services import accounts, api_tokens, invitations, members
from app.storage.models import AuditEvent, Invitation, Role
from app.storage.scoping import system_session


@pytest.fixture
def team(db):
    tenant = accounts.create_tenant(db, f"Acme {uuid.uuid4().hex[:6]}")
    people = {}
    for role in ("owner", "admin", "editor", "viewer"):
        user = accounts.create_user(db, f"{role}@example.com", None)  # never logs in: no password to hash
        accounts.add_member(db, tenant.id, user.id, role)
        people[role] = user.id
    return tenant.id, people


def _user(db, email: str) -> uuid.UUID:
    return accounts.create_user(db, email, None).id


def _actions(db) -> list[str]:
    with system_session(db.sessions) as session:
        return list(session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))


def test_an_invitation_link_makes_a_member_once(db, team) -> None:
    tenant_id, people = team
    token, view = invitations.invite(db, tenant_id, people["admin"], "editor")
    assert token.startswith("hub_inv_") and view.state == "pending" and view.role == Role.EDITOR
    newcomer = _user(db, "new@example.com")
    shown = invitations.preview(db, token)
    assert shown.role == Role.EDITOR and shown.tenant_name.startswith("Acme")
    assert invitations.accept(db, token, newcomer) == tenant_id
    assert {m.email: m.role for m in members.members_of(db, tenant_id, newcomer)}[
        "new@example.com"
    ] == Role.EDITOR
    other = _user(db, "other@example.com")
    with pytest.raises(NotFoundError, match="not valid any more"):
        invitations.accept(db, token, other)
    with pytest.raises(NotFoundError):
        invitations.preview(db, token)
    [listed] = invitations.list_invitations(db, tenant_id, people["owner"])
    assert listed.state == "accepted" and token not in repr(listed)
    assert [a for a in _actions(db) if a.startswith("member.i") or a == "member.joined"] == [
        "member.invited",
        "member.joined",
    ]


def test_expired_revoked_and_forged_links_are_refused(db, team) -> None:
    tenant_id, people = team
    newcomer = _user(db, "new@example.com")
    expired, _ = invitations.invite(db, tenant_id, people["owner"], "viewer", expires_in_hours=1)
    with system_session(db.sessions) as session:
        session.execute(
            sa.update(Invitation).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    revoked, view = invitations.invite(db, tenant_id, people["owner"], "viewer")
    invitations.revoke_invitation(db, tenant_id, people["admin"], view.id)
    for token in (expired, revoked, "hub_inv_forged", "nonsense"):
        with pytest.raises(NotFoundError, match="ask for a new one"):
            invitations.accept(db, token, newcomer)
    states = {v.id: v.state for v in invitations.list_invitations(db, tenant_id, people["owner"])}
    assert sorted(states.values()) == ["expired", "revoked"]


def test_a_named_invitation_is_only_for_that_address(db, team) -> None:
    tenant_id, people = team
    token, _ = invitations.invite(db, tenant_id, people["owner"], "viewer", email="Named@Example.com")
    with pytest.raises(PermissionDeniedError, match=r"for named@example\.com"):
        invitations.accept(db, token, _user(db, "someone@example.com"))
    assert invitations.accept(db, token, _user(db, "named@example.com")) == tenant_id
    with pytest.raises(ValidationError, match="already a member"):
        invitations.invite(db, tenant_id, people["owner"], "viewer", email="named@example.com")


def test_who_may_invite_whom(db, team) -> None:
    tenant_id, people = team
    for role in ("editor", "viewer"):
        with pytest.raises(PermissionDeniedError):
            invitations.invite(db, tenant_id, people[role], "viewer")
    with pytest.raises(PermissionDeniedError, match="Only an owner can invite an owner"):
        invitations.invite(db, tenant_id, people["admin"], "owner")
    assert invitations.invite(db, tenant_id, people["owner"], "owner")[1].role == Role.OWNER
    with pytest.raises(ValidationError, match="Unknown role"):
        invitations.invite(db, tenant_id, people["owner"], "god")
    with pytest.raises(ValidationError, match="expires after"):
        invitations.invite(db, tenant_id, people["owner"], "viewer", expires_in_hours=0)
    with pytest.raises(ValidationError, match="not an e-mail"):
        invitations.invite(db, tenant_id, people["owner"], "viewer", email="nobody")
    with pytest.raises(PermissionDeniedError):
        invitations.list_invitations(db, tenant_id, people["editor"])


def test_already_a_member_cannot_accept_again(db, team) -> None:
    tenant_id, people = team
    token, _ = invitations.invite(db, tenant_id, people["owner"], "admin")
    with pytest.raises(ValidationError, match="already a member"):
        invitations.accept(db, token, people["viewer"])


def test_roles_change_within_what_the_actor_may_grant(db, team) -> None:
    tenant_id, people = team
    assert members.change_role(db, tenant_id, people["admin"], people["viewer"], "editor").role == Role.EDITOR
    with pytest.raises(PermissionDeniedError, match="Only an owner"):
        members.change_role(db, tenant_id, people["admin"], people["editor"], "owner")
    with pytest.raises(PermissionDeniedError, match="Only an owner"):
        members.change_role(db, tenant_id, people["admin"], people["owner"], "viewer")
    with pytest.raises(PermissionDeniedError):
        members.change_role(db, tenant_id, people["editor"], people["viewer"], "admin")
    with pytest.raises(ValidationError, match="at least one owner"):
        members.change_role(db, tenant_id, people["owner"], people["owner"], "admin")
    members.change_role(db, tenant_id, people["owner"], people["admin"], "owner")
    members.change_role(db, tenant_id, people["owner"], people["owner"], "viewer")  # another owner remains
    with pytest.raises(NotFoundError):
        members.change_role(db, tenant_id, people["admin"], uuid.uuid4(), "viewer")
    assert "member.role_changed" in _actions(db)


def test_removal_revokes_tokens_and_keeps_an_owner(db, team) -> None:
    tenant_id, people = team
    _, token = api_tokens.create_token(db, tenant_id, people["editor"], "script", ["read"], expires_in_days=1)
    with pytest.raises(PermissionDeniedError):
        members.remove_member(db, tenant_id, people["viewer"], people["editor"])
    members.remove_member(db, tenant_id, people["admin"], people["editor"])
    assert "editor@example.com" not in {m.email for m in members.members_of(db, tenant_id, people["owner"])}
    [listed] = api_tokens.list_tokens(db, tenant_id, people["owner"])
    assert listed.id == token.id and listed.state == "revoked"
    with pytest.raises(PermissionDeniedError, match="Only an owner can remove an owner"):
        members.remove_member(db, tenant_id, people["admin"], people["owner"])
    with pytest.raises(ValidationError, match="at least one owner"):
        members.remove_member(db, tenant_id, people["owner"], people["owner"])
    members.remove_member(db, tenant_id, people["viewer"], people["viewer"])  # anyone may leave
    with pytest.raises(NotFoundError):
        members.members_of(db, tenant_id, people["viewer"])
    assert _actions(db).count("member.removed") == 2


def test_a_link_dies_with_its_creators_right_to_invite(db, team) -> None:
    tenant_id, people = team
    removed_link, _ = invitations.invite(db, tenant_id, people["admin"], "admin")
    members.remove_member(db, tenant_id, people["owner"], people["admin"])
    with pytest.raises(NotFoundError):  # revoked at the removal
        invitations.accept(db, removed_link, _user(db, "one@example.com"))
    # A link the accept-time check catches even if it was not revoked (made by an owner, then demoted).
    co_owner = _user(db, "co@example.com")
    accounts.add_member(db, tenant_id, co_owner, "owner")
    owner_link, view = invitations.invite(db, tenant_id, co_owner, "owner")
    members.change_role(db, tenant_id, people["owner"], co_owner, "admin")
    with system_session(db.sessions) as session:  # as if made before this version revoked links on demotion
        session.execute(sa.update(Invitation).where(Invitation.id == view.id).values(revoked_at=None))
    with pytest.raises(NotFoundError, match="may no longer invite with it"):
        invitations.accept(db, owner_link, _user(db, "two@example.com"))


def test_an_account_is_made_only_through_a_pending_invitation(db, team) -> None:
    tenant_id, people = team
    for token in ("hub_inv_forged", "nonsense"):
        with pytest.raises(NotFoundError):
            invitations.accept_as_new_user(db, token, "walkin@example.com", "a long password!!")
    named, _ = invitations.invite(db, tenant_id, people["owner"], "editor", email="named@example.com")
    with pytest.raises(PermissionDeniedError, match="sign up with that address"):
        invitations.accept_as_new_user(db, named, "other@example.com", "a long password!!")
    with pytest.raises(ValidationError):
        invitations.accept_as_new_user(db, named, "named@example.com", "short")
    assert accounts.find_user_by_email(db, "walkin@example.com") is None
    assert accounts.find_user_by_email(db, "other@example.com") is None
    assert (
        invitations.accept_as_new_user(db, named, "Named@Example.com", "a long password!!", "Nia")
        == tenant_id
    )
    joined = {m.email: m for m in members.members_of(db, tenant_id, people["owner"])}["named@example.com"]
    assert joined.role == Role.EDITOR and joined.display_name == "Nia"
    existing, _ = invitations.invite(db, tenant_id, people["owner"], "viewer")
    with pytest.raises(ValidationError, match="exists already: log in"):
        invitations.accept_as_new_user(db, existing, "viewer@example.com", "a long password!!")


@pytest.mark.postgres
def test_two_people_opening_one_link_at_once_make_one_member(db, team) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite lets one writer in at a time: the two cannot interleave")
    tenant_id, people = team
    token, _ = invitations.invite(db, tenant_id, people["owner"], "editor")
    users = [_user(db, f"racer{i}@example.com") for i in range(2)]
    barrier = threading.Barrier(2)

    def accept(user_id):
        barrier.wait()
        try:
            return invitations.accept(db, token, user_id)
        except NotFoundError:
            return None

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(accept, users))
    assert sorted(r is not None for r in results) == [False, True]
    emails = {m.email for m in members.members_of(db, tenant_id, people["owner"])}
    assert len(emails & {"racer0@example.com", "racer1@example.com"}) == 1


@pytest.mark.postgres
def test_two_owners_demoting_each_other_at_once_leave_one_owner(db, team) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite lets one writer in at a time: the two cannot interleave")
    tenant_id, people = team
    second = _user(db, "second@example.com")
    accounts.add_member(db, tenant_id, second, "owner")
    barrier = threading.Barrier(2)

    def demote(pair):
        actor, target = pair
        barrier.wait()
        try:
            members.change_role(db, tenant_id, actor, target, "admin")
            return True
        except ValidationError:
            return False

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(demote, [(people["owner"], second), (second, people["owner"])]))
    owners = [m for m in members.members_of(db, tenant_id, people["admin"]) if m.role == Role.OWNER]
    assert len(owners) == 1 and sorted(results) == [False, True]
