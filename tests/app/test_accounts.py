"""Accounts: users, tenants, memberships and the first-run set-up."""

from __future__ import annotations

import pytest

from app.errors import ValidationError
from app.services import accounts, members
from app.storage.db import Database


def test_first_run_setup_once(db: Database) -> None:
    assert not accounts.any_user_exists(db)
    user, tenant = accounts.first_run_setup(db, "owner@example.com", "a long password", "Acme Inc.")
    assert user.is_superuser
    assert tenant.slug == "acme-inc"
    assert [(t.name, t.role.value) for t in accounts.tenants_of(db, user.id)] == [("Acme Inc.", "owner")]
    with pytest.raises(ValidationError, match="already set up"):
        accounts.first_run_setup(db, "second@example.com", "a long password", "Other")


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("not-an-email", "a long password", "is not an e-mail address"),
        ("a@example.com", "short", "at least 10 characters"),
    ],
)
def test_create_user_rejects_bad_input(db: Database, email: str, password: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        accounts.create_user(db, email, password)
    assert not accounts.any_user_exists(db)


def test_duplicates_are_clear_errors(db: Database) -> None:
    accounts.create_user(db, "a@example.com", "a long password")
    with pytest.raises(ValidationError, match="already exists"):
        accounts.create_user(db, "A@EXAMPLE.COM", "a long password")
    accounts.create_tenant(db, "Acme")
    with pytest.raises(ValidationError, match="slug 'acme' already exists"):
        accounts.create_tenant(db, "ACME")


def test_membership_rules(db: Database) -> None:
    user = accounts.create_user(db, "a@example.com", "a long password")
    tenant = accounts.create_tenant(db, "Acme")
    with pytest.raises(ValidationError, match="Unknown role 'emperor'"):
        accounts.add_member(db, tenant.id, user.id, "emperor")
    accounts.add_member(db, tenant.id, user.id, "editor")
    with pytest.raises(ValidationError, match="already a member"):
        accounts.add_member(db, tenant.id, user.id, "viewer")
    assert [(m.email, m.role.value) for m in members.members_of(db, tenant.id, user.id)] == [
        ("a@example.com", "editor")
    ]


def test_members_are_listed_per_tenant(db: Database) -> None:
    a, b = accounts.create_tenant(db, "A"), accounts.create_tenant(db, "B")
    alice = accounts.create_user(db, "alice@example.com", None)
    bob = accounts.create_user(db, "bob@example.com", None)
    accounts.add_member(db, a.id, alice.id, "owner")
    accounts.add_member(db, b.id, bob.id, "owner")
    assert [m.email for m in members.members_of(db, a.id, alice.id)] == ["alice@example.com"]
    assert [m.email for m in members.members_of(db, b.id, bob.id)] == ["bob@example.com"]
