"""Personal API tokens: created for one user in one tenant, shown once, kept as a SHA-256, limited to scopes,
expiring and revocable.

A token never grants more than its owner's role at the moment of the request: a viewer's token with the `write`
scope still cannot change anything, and a removed member's tokens stop working at once."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from app.auth.tokens import new_token, token_hash
from app.errors import AuthenticationError, NotFoundError, ValidationError
from app.services import audit
from app.services.members import ADMINS, require_role, role_of
from app.storage.db import Database
from app.storage.models import ApiToken, Membership, Role, User
from app.storage.scoping import system_session, tenant_session
from app.storage.types import utcnow

TOKEN_PREFIX = "hub_pat"  # noqa: S105 - a label in front of every token, not a secret
MAX_DAYS = 3650
# last_used_at is written at most this often per token: an API client polling every second must not turn every
# read into a database write.
LAST_USED_GRANULARITY = dt.timedelta(minutes=1)
REFUSED = "The API token is unknown, expired or revoked (send it as 'Authorization: Bearer <token>')."


class Scope(enum.StrEnum):
    READ = "read"  # list and read everything the role may see
    WRITE = "write"  # change flows, credentials, components, templates and webhooks; activate and deactivate
    RUN = "run"  # start runs, replay runs and dead letters


@dataclass(frozen=True)
class TokenView:
    id: uuid.UUID
    name: str
    prefix: str
    scopes: tuple[str, ...]
    user_email: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= utcnow():
            return "expired"
        return "active"


@dataclass(frozen=True)
class Principal:
    """Who calls the API, with what: resolved from the token and the membership at each request."""

    token_id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    role: Role
    scopes: frozenset[str]


def parse_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    chosen: list[str] = []
    for raw in scopes:
        try:
            scope = Scope(str(raw).strip().lower())
        except ValueError:
            raise ValidationError(
                f"Unknown scope {raw!r}; use any of {', '.join(s.value for s in Scope)}."
            ) from None
        if scope.value not in chosen:
            chosen.append(scope.value)
    if not chosen:
        raise ValidationError("Choose at least one scope (read, write or run).")
    return tuple(s.value for s in Scope if s.value in chosen)


def create_token(
    db: Database,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    name: str,
    scopes: list[str] | tuple[str, ...],
    *,
    expires_in_days: int | None,
) -> tuple[str, TokenView]:
    """A new token for the user in this tenant. Returns the token itself, which is never shown again."""
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationError("Name the token (at most 200 characters), e.g. after the script that uses it.")
    chosen = parse_scopes(scopes)
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_DAYS:
        raise ValidationError(f"A token expires after 1 to {MAX_DAYS} days (or never).")
    token = new_token(TOKEN_PREFIX)
    with tenant_session(db.sessions, tenant_id) as session:
        if role_of(session, user_id) is None:
            raise NotFoundError("You are not a member of this tenant.")
        row = ApiToken(
            tenant_id=tenant_id,
            user_id=user_id,
            name=name,
            token_prefix=token[: len(TOKEN_PREFIX) + 5],
            token_hash=token_hash(token),
            scopes=list(chosen),
            expires_at=None if expires_in_days is None else utcnow() + dt.timedelta(days=expires_in_days),
        )
        session.add(row)
        session.flush()
        audit.record(session, "token.created", tenant_id=tenant_id, actor_user_id=user_id,
                     target_type="api_token", target_id=row.id, name=name, scopes=list(chosen),
                     expires_at=row.expires_at.isoformat() if row.expires_at else None)  # fmt: skip
        email = session.scalar(sa.select(User.email).where(User.id == user_id)) or ""
        return token, _view(row, email)


def _view(row: ApiToken, email: str) -> TokenView:
    return TokenView(id=row.id, name=row.name, prefix=row.token_prefix, scopes=tuple(row.scopes or ()),
                     user_email=email, created_at=row.created_at, expires_at=row.expires_at,
                     last_used_at=row.last_used_at, revoked_at=row.revoked_at)  # fmt: skip


def list_tokens(db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID) -> list[TokenView]:
    """The user's own tokens; owners and admins see every member's (to revoke one when someone leaves)."""
    with tenant_session(db.sessions, tenant_id) as session:
        role = role_of(session, user_id)
        if role is None:
            raise NotFoundError("You are not a member of this tenant.")
        query = (
            sa.select(ApiToken, User.email)
            .join(User, User.id == ApiToken.user_id)
            .order_by(ApiToken.created_at.desc(), ApiToken.id)
        )
        if role not in ADMINS:
            query = query.where(ApiToken.user_id == user_id)
        return [_view(row, email) for row, email in session.execute(query).all()]


def revoke_token(db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID, token_id: uuid.UUID) -> TokenView:
    """Revoke one's own token, or (owners and admins) any token of the tenant. Revoking twice is harmless."""
    with tenant_session(db.sessions, tenant_id) as session:
        role = role_of(session, user_id)
        row = session.get(ApiToken, token_id)
        if role is None or row is None:
            raise NotFoundError("This token does not exist (or belongs to another tenant).")
        if row.user_id != user_id:
            require_role(session, user_id, ADMINS, "revoke another member's token")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            audit.record(session, "token.revoked", tenant_id=tenant_id, actor_user_id=user_id,
                         target_type="api_token", target_id=row.id, name=row.name)  # fmt: skip
        email = session.scalar(sa.select(User.email).where(User.id == row.user_id)) or ""
        return _view(row, email)


def authenticate(db: Database, token: str) -> Principal:
    """The principal of a presented token; AuthenticationError for anything that is not a live token of a
    current member (one message for all: a caller learns nothing about which check failed)."""
    if not token.startswith(TOKEN_PREFIX + "_") or len(token) > 200:
        raise AuthenticationError(REFUSED)
    now = utcnow()
    with system_session(db.sessions) as session:
        found = session.execute(
            sa.select(ApiToken, Membership.role)
            .join(User, User.id == ApiToken.user_id)
            .join(
                Membership,
                sa.and_(Membership.user_id == ApiToken.user_id, Membership.tenant_id == ApiToken.tenant_id),
            )
            .where(ApiToken.token_hash == token_hash(token), User.is_active.is_(True))
        ).first()
        if found is None:
            raise AuthenticationError(REFUSED)
        row, role = found
        if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
            raise AuthenticationError(REFUSED)
        if row.last_used_at is None or row.last_used_at <= now - LAST_USED_GRANULARITY:
            row.last_used_at = now
        return Principal(token_id=row.id, tenant_id=row.tenant_id, user_id=row.user_id, role=Role(role),
                         scopes=frozenset(row.scopes or ()))  # fmt: skip
