"""Users, tenants and memberships: creation, first-run set-up, lookup of a user's tenants."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.auth.passwords import hash_password, password_problem
from app.errors import NotFoundError, ValidationError
from app.services import audit
from app.services.members import parse_role
from app.storage.db import Database
from app.storage.models import Membership, Role, Tenant, User
from app.storage.scoping import system_session

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$|^[^@\s]+@localhost$")
_SLUG_CHARS = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class TenantChoice:
    tenant_id: uuid.UUID
    name: str
    role: Role


def normalise_email(email: str) -> str:
    value = email.strip().lower()
    if not _EMAIL.match(value):
        raise ValidationError(f"{email!r} is not an e-mail address.")
    return value


def slugify(name: str) -> str:
    slug = _SLUG_CHARS.sub("-", name.strip().lower()).strip("-")[:60]
    if not slug:
        raise ValidationError("A tenant name needs at least one letter or digit.")
    return slug


def any_user_exists(db: Database) -> bool:
    with db.sessions() as session:
        return session.scalar(sa.select(sa.exists().where(User.id.is_not(None)))) or False


def create_tenant(db: Database, name: str, slug: str | None = None, weight: int = 1) -> Tenant:
    slug = slugify(slug or name)
    if weight < 1:
        raise ValidationError("A tenant's weight must be at least 1.")
    try:
        with system_session(db.sessions) as session:
            tenant = Tenant(name=name.strip(), slug=slug, weight=weight)
            session.add(tenant)
            session.flush()
            audit.record(
                session, "tenant.created", tenant_id=tenant.id, target_type="tenant", target_id=tenant.id
            )
    except IntegrityError:
        raise ValidationError(f"A tenant with the slug {slug!r} already exists.") from None
    return tenant


def create_user(
    db: Database,
    email: str,
    password: str | None,
    display_name: str = "",
    *,
    is_superuser: bool = False,
) -> User:
    email = normalise_email(email)
    if password is not None and (problem := password_problem(password)):
        raise ValidationError(problem)
    try:
        with system_session(db.sessions) as session:
            user = User(
                email=email,
                display_name=display_name.strip() or email.split("@")[0],
                password_hash=hash_password(password) if password is not None else None,
                is_superuser=is_superuser,
            )
            session.add(user)
            session.flush()
            audit.record(session, "user.created", target_type="user", target_id=user.id, email=email)
    except IntegrityError:
        raise ValidationError(f"A user with the e-mail {email} already exists.") from None
    return user


def add_member(db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID, role: Role | str) -> Membership:
    role = parse_role(role)
    try:
        with system_session(db.sessions) as session:
            if session.get(Tenant, tenant_id) is None:
                raise NotFoundError("No such tenant.")
            if session.get(User, user_id) is None:
                raise NotFoundError("No such user.")
            membership = Membership(tenant_id=tenant_id, user_id=user_id, role=role.value)
            session.add(membership)
            session.flush()
            audit.record(
                session,
                "member.added",
                tenant_id=tenant_id,
                target_type="user",
                target_id=user_id,
                role=role.value,
            )
    except IntegrityError:
        raise ValidationError("That user is already a member of this tenant.") from None
    return membership


def find_user_by_email(db: Database, email: str) -> User | None:
    with db.sessions() as session:
        return session.scalar(sa.select(User).where(User.email == email.strip().lower()))


def find_tenant_by_slug(db: Database, slug: str) -> Tenant | None:
    with system_session(db.sessions) as session:
        return session.scalar(sa.select(Tenant).where(Tenant.slug == slug))


def tenants_of(db: Database, user_id: uuid.UUID) -> list[TenantChoice]:
    """The tenants a user belongs to, by name. The one place that reads memberships across tenants."""
    with system_session(db.sessions) as session:
        rows = session.execute(
            sa.select(Tenant.id, Tenant.name, Membership.role)
            .join(Membership, Membership.tenant_id == Tenant.id)
            .where(Membership.user_id == user_id)
            .order_by(Tenant.name)
        ).all()
    return [TenantChoice(tenant_id=r.id, name=r.name, role=Role(r.role)) for r in rows]


def first_run_setup(db: Database, email: str, password: str, tenant_name: str) -> tuple[User, Tenant]:
    """Create the first user (a superuser and owner of a first tenant). Refused once any user exists."""
    if any_user_exists(db):
        raise ValidationError("The hub is already set up; log in instead.")
    if not tenant_name.strip():
        raise ValidationError("Name your first tenant (your team or company).")
    user = create_user(db, email, password, is_superuser=True)
    tenant = create_tenant(db, tenant_name)
    add_member(db, tenant.id, user.id, Role.OWNER)
    return user, tenant
