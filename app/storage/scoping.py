"""Tenant scoping enforced by the session itself, not by every query remembering a filter.

A session is opened for one tenant (`tenant_session`) or, for the hub's own housekeeping, explicitly for the
system (`system_session`). Any ORM statement that touches a tenant-owned model in a session without a scope
raises TenantScopeError. In a tenant session every SELECT, UPDATE and DELETE on a tenant-owned model gets
`tenant_id = :tenant` added (global rows of shared models are readable, never writable), and a flush refuses
rows of another tenant.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker, with_loader_criteria
from sqlalchemy.sql import visitors

from app.errors import TenantScopeError
from app.storage.base import Base, TenantOwned
from app.storage.models import Tenant

SCOPE_KEY = "hub_tenant_scope"
SYSTEM = "system"


@functools.cache
def _tenant_table_names() -> frozenset[str]:
    return frozenset(mapper.local_table.name for mapper in Base.registry.mappers if _scoped(mapper.class_))


def _scoped(cls: type) -> bool:
    # A tenant session sees its own tenants row too, never another tenant's.
    return issubclass(cls, TenantOwned) or cls is Tenant


def _referenced_tenant_tables(statement: Any) -> set[str]:
    names = _tenant_table_names()
    return {
        elem.name for elem in visitors.iterate(statement) if isinstance(elem, sa.Table) and elem.name in names
    }


def _covered_tables(state: ORMExecuteState) -> set[str]:
    """Tables whose ORM entity the statement selects or targets: the ones with_loader_criteria can filter."""
    statement = state.statement
    if state.is_select:
        entities = [d.get("entity") for d in statement.column_descriptions]
    else:
        entities = [statement.entity_description.get("entity")]
    return {
        sa.inspect(entity).local_table.name
        for entity in entities
        if entity is not None and _scoped(sa.inspect(entity).class_)
    }


@event.listens_for(Session, "do_orm_execute")
def _scope_statement(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    referenced = _referenced_tenant_tables(state.statement)
    if not referenced:
        return
    scope = state.session.info.get(SCOPE_KEY)
    if scope is None:
        raise TenantScopeError(
            "tenant-owned data queried from a session without a tenant; use tenant_session() "
            "or system_session()"
        )
    if scope == SYSTEM:
        return
    uncovered = referenced - _covered_tables(state)
    if uncovered:
        # Aggregates over select_from(), subqueries and Core tables escape the ORM criteria: refuse them
        # rather than leak. Name a column of the entity instead, e.g. func.count(Flow.id).
        raise TenantScopeError(
            f"statement reads {', '.join(sorted(uncovered))} in a way the tenant filter cannot cover; "
            "select the entity or one of its columns"
        )
    # Plain expressions per entity, not a lambda on the mixin: a lambda's closure values would have to be
    # tracked for the statement cache, and an untracked one silently reuses another tenant's id.
    options = [
        with_loader_criteria(cls, _criteria(cls, scope, state.is_select), include_aliases=True)
        for cls in {mapper.class_ for mapper in state.all_mappers if _scoped(mapper.class_)}
    ]
    state.statement = state.statement.options(*options)


def _criteria(cls: Any, tenant_id: uuid.UUID, reading: bool) -> Any:
    if cls is Tenant:
        return Tenant.id == tenant_id
    if reading and cls.tenant_shared:
        return sa.or_(cls.tenant_id == tenant_id, cls.tenant_id.is_(None))
    return cls.tenant_id == tenant_id


@event.listens_for(Session, "before_flush")
def _guard_writes(session: Session, _context: Any, _instances: Any) -> None:
    scope = session.info.get(SCOPE_KEY)
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Tenant) and scope not in (None, SYSTEM) and obj.id != scope:
            raise TenantScopeError("another tenant cannot be written from this tenant's session")
        if not isinstance(obj, TenantOwned):
            continue
        if scope is None:
            raise TenantScopeError(f"{type(obj).__name__} written from a session without a tenant")
        if scope == SYSTEM:
            continue
        if obj.tenant_id is None and obj in session.new:
            obj.tenant_id = scope
        if obj.tenant_id != scope:
            raise TenantScopeError(
                f"{type(obj).__name__} of another tenant (or a global one) cannot be written "
                "from this tenant's session"
            )


@contextmanager
def tenant_session(factory: sessionmaker[Session], tenant_id: uuid.UUID) -> Iterator[Session]:
    """A session that sees and writes only `tenant_id`'s rows. Commits on success, rolls back on error."""
    if not isinstance(tenant_id, uuid.UUID):
        raise TenantScopeError(f"tenant id must be a UUID, got {type(tenant_id).__name__}")
    with factory() as session, session.begin():
        session.info[SCOPE_KEY] = tenant_id
        yield session


@contextmanager
def system_session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for the hub's own work across tenants (migrations, recorder, admin CLI)."""
    with factory() as session, session.begin():
        session.info[SCOPE_KEY] = SYSTEM
        yield session
