"""Database constraints hold on every backend: bad rows are refused by the database itself."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.storage import models as m
from app.storage.db import Database
from app.storage.scoping import SCOPE_KEY, system_session
from tests.factories import insert_tenant_rows


def _insert(db: Database, *rows: object) -> None:
    with system_session(db.sessions) as session:
        session.add_all(rows)


def test_tenant_weight_must_be_positive(db: Database) -> None:
    with pytest.raises(IntegrityError):
        _insert(db, m.Tenant(slug="t", name="T", weight=0))


def test_tenant_slug_and_user_email_are_unique(db: Database) -> None:
    _insert(db, m.Tenant(slug="t", name="T"), m.User(email="a@example.com"))
    with pytest.raises(IntegrityError):
        _insert(db, m.Tenant(slug="t", name="Other"))
    with pytest.raises(IntegrityError):
        _insert(db, m.User(email="a@example.com"))


def test_unknown_role_is_refused(db: Database) -> None:
    tenant, user = m.Tenant(slug="t", name="T"), m.User(email="a@example.com")
    _insert(db, tenant, user)
    with pytest.raises(IntegrityError):
        _insert(db, m.Membership(tenant_id=tenant.id, user_id=user.id, role="emperor"))


def test_one_membership_per_user_and_tenant(db: Database) -> None:
    tenant, user = m.Tenant(slug="t", name="T"), m.User(email="a@example.com")
    _insert(db, tenant, user)
    _insert(db, m.Membership(tenant_id=tenant.id, user_id=user.id, role="viewer"))
    with pytest.raises(IntegrityError):
        _insert(db, m.Membership(tenant_id=tenant.id, user_id=user.id, role="owner"))


def test_global_component_name_and_version_unique(db: Database) -> None:
    def component() -> m.Component:
        return m.Component(
            tenant_id=None, name="http", version="1", title="HTTP", descriptor={}, runtime="builtin"
        )

    _insert(db, component())
    with pytest.raises(IntegrityError):
        _insert(db, component())


def test_status_values_are_checked(db: Database) -> None:
    tenant = m.Tenant(slug="t", name="T")
    _insert(db, tenant)
    with pytest.raises(IntegrityError):
        _insert(db, m.Flow(tenant_id=tenant.id, name="f", status="running-wild"))


def test_deleting_a_tenant_removes_all_its_rows(db: Database) -> None:
    a, b, user = m.Tenant(slug="a", name="A"), m.Tenant(slug="b", name="B"), m.User(email="u@example.com")
    _insert(db, a, b, user)
    with system_session(db.sessions) as session:
        insert_tenant_rows(session, a.id, user.id, "a")
        insert_tenant_rows(session, b.id, user.id, "b")
    with system_session(db.sessions) as session:
        # Credentials reference keys with RESTRICT: remove them first as the vault would.
        session.execute(sa.delete(m.Credential).where(m.Credential.tenant_id == a.id))
        session.execute(sa.delete(m.Tenant).where(m.Tenant.id == a.id))
    with system_session(db.sessions) as session:
        for model in (m.Flow, m.Run, m.StepExecution, m.RunLogLine, m.Webhook, m.Membership, m.TenantKey):
            owners = set(session.scalars(sa.select(model.tenant_id)))
            assert owners == {b.id}, model.__name__


def test_flow_lock_version_detects_concurrent_edits(db: Database) -> None:
    from sqlalchemy.orm.exc import StaleDataError

    tenant = m.Tenant(slug="t", name="T")
    _insert(db, tenant)
    flow = m.Flow(tenant_id=tenant.id, name="f")
    _insert(db, flow)
    first, second = db.sessions(), db.sessions()
    for s in (first, second):
        s.info[SCOPE_KEY] = tenant.id
    try:
        mine = first.get(m.Flow, flow.id)
        theirs = second.get(m.Flow, flow.id)
        mine.name = "mine"
        first.commit()
        theirs.name = "theirs"
        with pytest.raises(StaleDataError):
            second.commit()
    finally:
        first.close()
        second.close()
