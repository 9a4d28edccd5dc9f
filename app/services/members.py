"""Who is acting, and may they: the member's role read from the database at the moment of the action (not as it
was when their page loaded)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.errors import PermissionDeniedError
from app.storage.models import Membership, Role

EDITORS = (Role.OWNER, Role.ADMIN, Role.EDITOR)
ADMINS = (Role.OWNER, Role.ADMIN)


def role_of(session: Session, user_id: uuid.UUID | None) -> Role | None:
    """The user's role in the session's tenant; None when they are not a member (or no user is given)."""
    if user_id is None:
        return None
    found = session.scalar(sa.select(Membership.role).where(Membership.user_id == user_id).limit(1))
    return Role(found) if found else None


def require_role(session: Session, user_id: uuid.UUID | None, allowed: tuple[Role, ...], doing: str) -> Role:
    role = role_of(session, user_id)
    if role not in allowed:
        needed = " or ".join(r.value for r in allowed)
        raise PermissionDeniedError(
            f"Your role here ({role.value if role else 'none'}) cannot {doing}; this needs {needed}."
        )
    return role
