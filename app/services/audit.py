"""Writing audit events (app/services/audit_log.py reads them)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from app.storage.models import AuditEvent


def record(
    session: Session,
    action: str,
    *,
    tenant_id: uuid.UUID | None = None,
    actor_user_id: uuid.UUID | None = None,
    target_type: str | None = None,
    target_id: object = None,
    ip: str | None = None,
    **details: Any,
) -> None:
    session.add(
        AuditEvent(
            tenant_id=tenant_id,
            actor_user_id=actor_user_id,
            action=action,
            target_type=target_type,
            target_id=None if target_id is None else str(target_id),
            ip=ip,
            details=details,
        )
    )
