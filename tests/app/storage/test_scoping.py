"""Tenant scoping: a tenant's session never returns, changes or creates another tenant's rows."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from app.errors import TenantScopeError
from app.storage import models as m
from app.storage.base import Base, TenantOwned
from app.storage.db import Database
from app.storage.scoping import system_session, tenant_session
from tests.factories import insert_tenant_rows

TENANT_MODELS = sorted(
    (mapper.class_ for mapper in Base.registry.mappers if issubclass(mapper.class_, TenantOwned)),
    key=lambda cls: cls.__name__,
)


@pytest.fixture
def two_tenants(db: Database) -> tuple[uuid.UUID, uuid.UUID]:
    with system_session(db.sessions) as session:
        a, b = m.Tenant(slug="a", name="A"), m.Tenant(slug="b", name="B")
        user = m.User(email="u@example.com")
        session.add_all([a, b, user])
        session.flush()
        insert_tenant_rows(session, a.id, user.id, "a")
        insert_tenant_rows(session, b.id, user.id, "b")
        session.add(
            m.Component(
                tenant_id=None, name="global", version="1", title="G", descriptor={}, runtime="builtin"
            )
        )
        session.add(m.AuditEvent(tenant_id=None, action="login.failed"))
    return a.id, b.id


def test_every_tenant_model_is_covered_by_the_fixture(db: Database, two_tenants) -> None:
    with system_session(db.sessions) as session:
        for model in TENANT_MODELS:
            owners = set(session.scalars(sa.select(model.tenant_id)))
            assert set(two_tenants) <= owners, f"{model.__name__} has no row per tenant in the fixture"


@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda cls: cls.__name__)
def test_listing_returns_only_own_rows(db: Database, two_tenants, model: type) -> None:
    a, b = two_tenants
    with tenant_session(db.sessions, a) as session:
        rows = session.scalars(sa.select(model)).all()
        counted = session.scalar(sa.select(sa.func.count(model.id)))
    assert rows, f"tenant A should see its own {model.__name__}"
    allowed = {a, None} if model.tenant_shared else {a}
    assert {row.tenant_id for row in rows} <= allowed
    assert b not in {row.tenant_id for row in rows}
    assert counted == len(rows)


@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda cls: cls.__name__)
def test_get_by_id_of_other_tenant_is_none(db: Database, two_tenants, model: type) -> None:
    a, b = two_tenants
    with system_session(db.sessions) as session:
        other_id = session.scalar(sa.select(model.id).where(model.tenant_id == b).limit(1))
    with tenant_session(db.sessions, a) as session:
        assert session.get(model, other_id) is None


def test_bulk_update_and_delete_touch_only_own_rows(db: Database, two_tenants) -> None:
    a, b = two_tenants
    with tenant_session(db.sessions, a) as session:
        session.execute(sa.update(m.Flow).values(description="changed"))
        session.execute(sa.delete(m.Template))
        session.execute(sa.delete(m.Component))  # the global component is readable, never deletable
    with system_session(db.sessions) as session:
        flows = {f.tenant_id: f.description for f in session.scalars(sa.select(m.Flow))}
        templates = {t.tenant_id for t in session.scalars(sa.select(m.Template))}
        components = {c.tenant_id for c in session.scalars(sa.select(m.Component))}
    assert flows == {a: "changed", b: ""}
    assert templates == {b}
    assert components == {b, None}


def test_relationship_style_joins_are_filtered(db: Database, two_tenants) -> None:
    a, _ = two_tenants
    with tenant_session(db.sessions, a) as session:
        rows = session.execute(
            sa.select(m.Run.id, m.Flow.name).join(m.Flow, m.Flow.id == m.Run.flow_id)
        ).all()
    assert [name for _, name in rows] == ["flow-a"]


def test_tenant_sees_only_its_own_tenant_row(db: Database, two_tenants) -> None:
    a, _ = two_tenants
    with tenant_session(db.sessions, a) as session:
        assert [t.id for t in session.scalars(sa.select(m.Tenant))] == [a]


def test_new_rows_get_the_session_tenant(db: Database, two_tenants) -> None:
    a, _ = two_tenants
    with tenant_session(db.sessions, a) as session:
        flow = m.Flow(name="implicit")
        session.add(flow)
    assert flow.tenant_id == a


def test_writing_another_tenants_row_is_refused(db: Database, two_tenants) -> None:
    a, b = two_tenants
    with pytest.raises(TenantScopeError), tenant_session(db.sessions, a) as session:
        session.add(m.Flow(tenant_id=b, name="intruder"))
    with system_session(db.sessions) as session:
        assert session.scalar(sa.select(m.Flow).where(m.Flow.name == "intruder")) is None


def test_modifying_a_global_row_from_a_tenant_is_refused(db: Database, two_tenants) -> None:
    a, _ = two_tenants
    with pytest.raises(TenantScopeError), tenant_session(db.sessions, a) as session:
        component = session.scalar(sa.select(m.Component).where(m.Component.tenant_id.is_(None)))
        component.title = "hijacked"


def test_query_without_scope_is_refused(db: Database, two_tenants) -> None:
    with pytest.raises(TenantScopeError), db.sessions() as session:
        session.scalars(sa.select(m.Flow)).all()


@pytest.mark.parametrize(
    "statement",
    [
        sa.select(sa.func.count()).select_from(m.Flow),
        sa.select(sa.func.count()).select_from(sa.select(m.Flow).subquery()),
        sa.select(m.Flow.__table__),
        sa.update(m.Flow.__table__).values(name="x"),
    ],
    ids=["count-select-from", "subquery", "core-table", "core-update"],
)
def test_statements_the_filter_cannot_cover_are_refused(db: Database, two_tenants, statement) -> None:
    a, _ = two_tenants
    with pytest.raises(TenantScopeError), tenant_session(db.sessions, a) as session:
        session.execute(statement)


def test_tenant_session_requires_a_uuid(db: Database) -> None:
    with pytest.raises(TenantScopeError), tenant_session(db.sessions, "a"):  # type: ignore[arg-type]
        pass


def test_cached_statements_never_reuse_another_tenants_filter(db: Database, two_tenants) -> None:
    """The same statement text run for A then B must be filtered for each (the statement cache is shared)."""
    seen = {}
    for tenant in (*two_tenants, *two_tenants):
        with tenant_session(db.sessions, tenant) as session:
            seen.setdefault(tenant, set()).update(f.name for f in session.scalars(sa.select(m.Flow)))
    a, b = two_tenants
    assert seen == {a: {"flow-a"}, b: {"flow-b"}}
