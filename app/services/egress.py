"""The egress allow list hub administrators edit: internal hosts and networks that steps may call, on top of
HUB_EGRESS_ALLOW. Stored in the database (the truth), published to Redis for the workers, audited."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import redis

from app.errors import PermissionDeniedError, ValidationError
from app.services import audit
from app.storage.db import Database
from app.storage.models import HubSetting
from app.storage.scoping import system_session
from runtime.net.egress import EgressPolicy
from runtime.net.egress_store import EgressStore

KEY = "egress_allow"


@dataclass(frozen=True)
class EgressView:
    configured: tuple[str, ...]  # HUB_EGRESS_ALLOW: changed only by the configuration
    added: tuple[str, ...]  # what administrators added here


def _stored(db: Database) -> tuple[str, ...]:
    with system_session(db.sessions) as session:
        setting = session.get(HubSetting, KEY)
        return tuple((setting.value or {}).get("allowed", ())) if setting else ()


def egress_view(db: Database, configured: str) -> EgressView:
    return EgressView(EgressPolicy.parse(configured).allowed, _stored(db))


def parse_entries(text: str) -> tuple[str, ...]:
    """One entry per line or comma: host names (wildcards like *.corp.example), addresses and networks."""
    try:
        return EgressPolicy.parse(",".join(text.replace("\n", ",").split(","))).allowed
    except ValueError as exc:
        raise ValidationError(f"Not saved: {exc}. Use a host name (api.corp.example, *.corp.example), an address "
                              "(10.1.2.3) or a network (10.1.0.0/16).") from None  # fmt: skip


def update_egress(
    db: Database, client: redis.Redis, text: str, *, actor_user_id: uuid.UUID | None, actor_is_superuser: bool
) -> EgressView:
    """Replace the added entries; every worker applies them within its next housekeeping round (~1 s)."""
    if not actor_is_superuser:
        raise PermissionDeniedError("Only hub administrators may change which internal hosts steps may call.")
    entries = tuple(dict.fromkeys(parse_entries(text)))
    with system_session(db.sessions) as session:
        setting = session.get(HubSetting, KEY)
        before = tuple((setting.value or {}).get("allowed", ())) if setting else ()
        if setting is None:
            setting = HubSetting(key=KEY)
            session.add(setting)
        setting.value, setting.updated_by = {"allowed": list(entries)}, actor_user_id
        if before != entries:
            audit.record(session, "hub.egress_changed", actor_user_id=actor_user_id, target_type="hub",
                         before=list(before), after=list(entries))  # fmt: skip
    EgressStore(client).write(entries)
    return EgressView((), entries)


def publish(db: Database, client: redis.Redis) -> None:
    """Write the stored list to Redis (start-up; heals a Redis that lost it)."""
    EgressStore(client).write(_stored(db))
