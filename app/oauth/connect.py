"""Connect: the OAuth2 authorization-code flow that makes (or renews) an "OAuth2 connection" credential.

`start_connect` keeps what the callback needs (who asked, which client, the PKCE verifier) in Redis under a random
state for ten minutes and returns the provider's sign-in URL. `finish_connect` (the callback, /oauth/callback)
takes that state once, checks it was started in the same browser, exchanges the code (with the verifier) for
tokens and stores them in the vault with the account's name."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass

import orjson
import redis
import sqlalchemy as sa
from authlib.common.security import generate_token
from sqlalchemy.orm import Session

from app import one_time
from app.errors import HubError, NotFoundError, ValidationError
from app.oauth import provider
from app.oauth.clients import oauth_client_config
from app.oauth.provider import ProviderRefused, ProviderUnreachable
from app.services import audit
from app.services.credentials import NOT_FOUND, announce_change
from app.services.members import EDITORS, require_role
from app.storage.db import Database
from app.storage.models import Credential, OAuthClient
from app.storage.scoping import tenant_session
from app.vault.store import Vault
from runtime.bus.streams import StreamsBus
from runtime.net.egress import EgressPolicy

STATE_TTL_S = 600
CALLBACK_PATH = "/oauth/callback"


class ConnectError(HubError):
    """Connect did not complete; the message says why and that starting again is the way out."""


@dataclass(frozen=True)
class Connected:
    credential_id: uuid.UUID
    name: str
    account: str


def _state_key(state: str) -> str:
    return "hub:oauth-state:" + hashlib.sha256(state.encode()).hexdigest()


def binding_hash(binding: str) -> str:
    return hashlib.sha256(binding.encode()).hexdigest() if binding else ""


def start_connect(
    db: Database,
    vault: Vault,
    redis_client: redis.Redis,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID | None,
    *,
    client_id: uuid.UUID,
    redirect_uri: str,
    name: str = "",
    personal: bool = False,
    reconnect: uuid.UUID | None = None,
    binding: str = "",
) -> str:
    """The provider's sign-in URL for a new connection (or for `reconnect`ing an existing one). `binding` is a
    random value the browser keeps in a cookie: the callback must come back from the same browser."""
    with tenant_session(db.sessions, tenant_id) as session:
        require_role(session, user_id, EDITORS, "connect accounts")
        client = session.get(OAuthClient, client_id)
        if client is None:
            raise NotFoundError("This OAuth2 client does not exist (or belongs to another tenant).")
        if reconnect is not None:
            existing = session.get(Credential, reconnect)
            if (
                existing is None
                or existing.kind != "oauth2_code"
                or (existing.owner_user_id is not None and existing.owner_user_id != user_id)
            ):
                raise NotFoundError(NOT_FOUND)
            name, personal = existing.name, existing.owner_user_id is not None
        elif not name.strip():
            name = f"{client.name} connection"
        config = oauth_client_config(session, vault, client)
    state = secrets.token_urlsafe(32)
    verifier = generate_token(64) if config.pkce else None
    pending = {
        "tenant": str(tenant_id),
        "user": str(user_id) if user_id else None,
        "client": str(client_id),
        "name": name.strip()[:200],
        "personal": personal,
        "reconnect": str(reconnect) if reconnect else None,
        "verifier": verifier,
        "redirect_uri": redirect_uri,
        "binding": binding_hash(binding),
        "started": time.time(),
    }
    redis_client.set(_state_key(state), orjson.dumps(pending), ex=STATE_TTL_S)
    return provider.authorization_url(config, redirect_uri, state, verifier)


def _take(redis_client: redis.Redis, state: str) -> dict:
    found = one_time.take(redis_client, _state_key(state))  # a state works once
    if not found:
        raise ConnectError("This sign-in has expired or was already used; start Connect again.")
    return orjson.loads(found)


def finish_connect(
    db: Database,
    vault: Vault,
    redis_client: redis.Redis,
    *,
    state: str,
    code: str = "",
    error: str = "",
    error_description: str = "",
    binding: str = "",
    changes: StreamsBus | None = None,
    egress: EgressPolicy | None = None,
) -> Connected:
    """`egress`: where the hub may connect (the client's token and userinfo URLs are the tenant's to set); by
    default no internal address."""
    egress = egress or EgressPolicy()
    if not state:
        raise ConnectError("The provider came back without a state; start Connect again.")
    pending = _take(redis_client, state)
    if pending["binding"] and not secrets.compare_digest(pending["binding"], binding_hash(binding)):
        raise ConnectError("This sign-in was started in another browser; start Connect again here.")
    if error:
        detail = f": {error_description}" if error_description else ""
        raise ConnectError(f"The provider did not grant access ({error}{detail}).")
    if not code:
        raise ConnectError("The provider came back without a code; start Connect again.")
    tenant_id, user_id = uuid.UUID(pending["tenant"]), uuid.UUID(pending["user"]) if pending["user"] else None
    client_id = uuid.UUID(pending["client"])
    with tenant_session(db.sessions, tenant_id) as session:
        client = session.get(OAuthClient, client_id)
        if client is None:
            raise ConnectError("The OAuth2 client was deleted meanwhile; register it again.")
        config = oauth_client_config(session, vault, client)
    try:
        token = provider.exchange_code(
            config, pending["redirect_uri"], code, pending["verifier"], egress=egress
        )
    except (ProviderRefused, ProviderUnreachable) as exc:
        raise ConnectError(f"The provider did not give a token ({exc}); start Connect again.") from None
    account = provider.account_name(config, token, egress=egress)
    values = {**provider.token_values(token), "client": str(client_id)}
    values.pop("id_token", None)  # it named the account; steps have no use for it
    meta = {
        "account": account,
        "oauth_client": str(client_id),
        "client_name": client.name,
        "scopes": str(values.get("scope") or " ".join(config.scopes)),
        "expires_at": values.get("expires_at"),
    }
    with tenant_session(db.sessions, tenant_id) as session:
        require_role(session, user_id, EDITORS, "connect accounts")  # still, ten minutes later
        if pending["reconnect"]:
            credential = session.get(Credential, uuid.UUID(pending["reconnect"]), with_for_update=True)
            if credential is None:
                raise ConnectError("The connection was deleted meanwhile; connect again as a new one.")
            vault.replace_values(session, credential, values)
            credential.meta = meta
            credential.status, credential.status_reason = "ok", None
            action = "credential.reconnected"
        else:
            credential = vault.store(
                session,
                tenant_id,
                name=_free_name(session, pending["name"]),
                kind="oauth2_code",
                values=values,
                owner_user_id=user_id if pending["personal"] else None,
                meta=meta,
                created_by=user_id,
            )
            action = "credential.connected"
        audit.record(session, action, tenant_id=tenant_id, actor_user_id=user_id, target_type="credential",
                     target_id=credential.id, account=account)  # fmt: skip
        done = Connected(credential.id, credential.name, account)
    announce_change(changes, tenant_id)
    return done


def _free_name(session: Session, name: str) -> str:
    """Connecting twice with the same name gives "name (2)" rather than failing after the provider said yes."""
    taken = {n.lower() for n in session.scalars(sa.select(Credential.name))}
    candidate, number = name, 2
    while candidate.lower() in taken:
        candidate, number = f"{name} ({number})", number + 1
    if not candidate:
        raise ValidationError("A connection needs a name.")
    return candidate
