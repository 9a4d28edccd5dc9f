"""The tenant's OAuth2 clients: the applications registered with providers that "Connect" signs in with.

Admins register them (client id and secret, endpoints, scopes, PKCE); the endpoints and scopes can come from a
component's descriptor (its credentials.oauth2 block) or from a provider's discovery document. Editors see them
to connect, never the secret."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import NotFoundError, ValidationError
from app.oauth import provider
from app.services import audit
from app.services.members import ADMINS, EDITORS, require_role
from app.storage.db import Database
from app.storage.models import Credential, OAuthClient
from app.storage.scoping import tenant_session
from app.vault.store import Vault
from runtime.components.descriptor import DescriptorError, parse_descriptor
from runtime.components.spec import ComponentResolver
from runtime.net.egress import EgressPolicy

NOT_FOUND = "This OAuth2 client does not exist (or belongs to another tenant)."


@dataclass(frozen=True)
class OAuthClientView:
    id: uuid.UUID
    name: str
    component_name: str | None
    client_id: str
    authorize_url: str
    token_url: str
    userinfo_url: str
    scopes: tuple[str, ...]
    pkce: bool
    extra_params: dict[str, str]
    connections: int


@dataclass(frozen=True)
class ClientSettings:
    """What an admin enters for a client; `client_secret` empty on an edit keeps the saved one."""

    name: str
    client_id: str
    authorize_url: str
    token_url: str
    client_secret: str = ""
    userinfo_url: str = ""
    scopes: tuple[str, ...] = ()
    pkce: bool = True
    extra_params: dict[str, str] | None = None
    component_name: str | None = None


def _url(label: str, value: str, required: bool = True) -> str:
    value = value.strip()
    if not value and not required:
        return ""
    if "{{" in value:
        raise ValidationError(f"{label}: replace the placeholder in {value!r} with the real value.")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationError(f"{label}: {value or '(empty)'!r} is not an http(s) URL.")
    return value


def _checked(settings: ClientSettings, new: bool) -> ClientSettings:
    name, client_id = settings.name.strip(), settings.client_id.strip()
    if not name:
        raise ValidationError("An OAuth2 client needs a name.")
    if not client_id:
        raise ValidationError(
            "Client ID is required (the provider shows it where the application is registered)."
        )
    if new and not settings.client_secret.strip():
        raise ValidationError("Client secret is required.")
    return ClientSettings(
        name=name[:200],
        client_id=client_id,
        client_secret=settings.client_secret.strip(),
        authorize_url=_url("Authorization URL", settings.authorize_url),
        token_url=_url("Token URL", settings.token_url),
        userinfo_url=_url("Userinfo URL", settings.userinfo_url, required=False),
        scopes=tuple(s for s in settings.scopes if s),
        pkce=settings.pkce,
        extra_params={str(k): str(v) for k, v in (settings.extra_params or {}).items()},
        component_name=settings.component_name or None,
    )


def _connections(session: Any, client_id: uuid.UUID) -> list[str]:
    rows = session.scalars(sa.select(Credential).where(Credential.kind == "oauth2_code"))
    return [c.name for c in rows if (c.meta or {}).get("oauth_client") == str(client_id)]


def _view(session: Any, client: OAuthClient) -> OAuthClientView:
    return OAuthClientView(
        id=client.id,
        name=client.name,
        component_name=client.component_name,
        client_id=client.client_id,
        authorize_url=client.authorize_url,
        token_url=client.token_url,
        userinfo_url=client.userinfo_url or "",
        scopes=tuple(client.scopes or ()),
        pkce=client.pkce,
        extra_params=dict(client.extra_params or {}),
        connections=len(_connections(session, client.id)),
    )


def oauth_client_config(session: Session, vault: Vault, client: OAuthClient) -> provider.ClientConfig:
    """What the OAuth2 calls need of a registered client, its secret opened from the vault."""
    return provider.ClientConfig(
        client_id=client.client_id,
        client_secret=vault.client_secret(session, client),
        token_url=client.token_url,
        authorize_url=client.authorize_url,
        userinfo_url=client.userinfo_url or "",
        scopes=tuple(client.scopes or ()),
        pkce=client.pkce,
        extra_params=dict(client.extra_params or {}),
    )


def list_clients(db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID | None) -> list[OAuthClientView]:
    with tenant_session(db.sessions, tenant_id) as session:
        require_role(session, user_id, EDITORS, "see OAuth2 clients")
        rows = session.scalars(sa.select(OAuthClient).order_by(sa.func.lower(OAuthClient.name)))
        return [_view(session, c) for c in rows]


def register_client(
    db: Database, vault: Vault, tenant_id: uuid.UUID, user_id: uuid.UUID | None, settings: ClientSettings
) -> OAuthClientView:
    settings = _checked(settings, new=True)
    try:
        with tenant_session(db.sessions, tenant_id) as session:
            require_role(session, user_id, ADMINS, "register OAuth2 clients")
            client = OAuthClient(id=uuid.uuid4(), tenant_id=tenant_id, created_by=user_id)
            _apply(client, settings)
            vault.seal_client_secret(session, client, settings.client_secret)
            session.add(client)
            session.flush()
            audit.record(session, "oauth_client.created", tenant_id=tenant_id, actor_user_id=user_id,
                         target_type="oauth_client", target_id=client.id)  # fmt: skip
            return _view(session, client)
    except IntegrityError:
        raise ValidationError(f"There is already an OAuth2 client named {settings.name!r}.") from None


def update_client(
    db: Database,
    vault: Vault,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID | None,
    client_id: uuid.UUID,
    settings: ClientSettings,
) -> OAuthClientView:
    settings = _checked(settings, new=False)
    try:
        with tenant_session(db.sessions, tenant_id) as session:
            require_role(session, user_id, ADMINS, "change OAuth2 clients")
            client = session.get(OAuthClient, client_id)
            if client is None:
                raise NotFoundError(NOT_FOUND)
            moved = (client.client_id, client.authorize_url, client.token_url, client.userinfo_url or "") != (
                settings.client_id,
                settings.authorize_url,
                settings.token_url,
                settings.userinfo_url,
            )
            used = _connections(session, client.id)
            if moved and used:
                # Their refresh tokens (personal ones too) would be sent to the new address.
                raise ValidationError(
                    f"{client.name!r} cannot move while connections use it ({', '.join(sorted(used))}): its client "
                    "ID and URLs stay as they are. Register a new client and reconnect them with it."
                )
            _apply(client, settings)
            if settings.client_secret:
                vault.seal_client_secret(session, client, settings.client_secret)
            session.flush()
            audit.record(session, "oauth_client.updated", tenant_id=tenant_id, actor_user_id=user_id,
                         target_type="oauth_client", target_id=client.id)  # fmt: skip
            return _view(session, client)
    except IntegrityError:
        raise ValidationError(f"There is already an OAuth2 client named {settings.name!r}.") from None


def _apply(client: OAuthClient, settings: ClientSettings) -> None:
    client.name = settings.name
    client.client_id = settings.client_id
    client.authorize_url = settings.authorize_url
    client.token_url = settings.token_url
    client.userinfo_url = settings.userinfo_url or None
    client.scopes = list(settings.scopes)
    client.pkce = settings.pkce
    client.extra_params = dict(settings.extra_params or {})
    client.component_name = settings.component_name


def delete_client(db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID | None, client_id: uuid.UUID) -> str:
    """Refused while connections made with it exist: they could not renew their tokens any more."""
    with tenant_session(db.sessions, tenant_id) as session:
        require_role(session, user_id, ADMINS, "delete OAuth2 clients")
        client = session.get(OAuthClient, client_id)
        if client is None:
            raise NotFoundError(NOT_FOUND)
        used = _connections(session, client.id)
        if used:
            raise ValidationError(
                f"{client.name!r} is used by these connections: {', '.join(sorted(used))}. Delete them first."
            )
        name = client.name
        session.delete(client)
        audit.record(session, "oauth_client.deleted", tenant_id=tenant_id, actor_user_id=user_id,
                     target_type="oauth_client", target_id=client_id, name=name)  # fmt: skip
    return name


def discovered_settings(
    db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID | None, issuer: str, egress: EgressPolicy
) -> dict[str, str]:
    """A client's endpoints from the provider's discovery document (admins only: the hub fetches the URL)."""
    with tenant_session(db.sessions, tenant_id) as session:
        require_role(session, user_id, ADMINS, "register OAuth2 clients")
    try:
        found = provider.discover(issuer, egress=egress)
    except (provider.ProviderRefused, provider.ProviderUnreachable) as exc:
        raise ValidationError(f"No discovery document from {issuer!r}: {exc}") from None
    return {
        "authorize_url": str(found.get("authorization_endpoint", "")),
        "token_url": str(found.get("token_endpoint", "")),
        "userinfo_url": str(found.get("userinfo_endpoint", "")),
    }


def _templated(value: Any) -> bool:
    """elastic.io descriptors name their app's id and secret as {{PLACEHOLDERS}} filled from the environment."""
    return not isinstance(value, str) or not value or "{{" in value


def descriptor_defaults(components: ComponentResolver, component_name: str) -> dict[str, Any]:
    """A client's endpoints and scopes from a component's descriptor (credentials.oauth2: auth_uri, token_uri,
    scopes, and client_id unless it is an environment placeholder)."""
    spec = components.get(component_name)
    if spec is None:
        raise ValidationError(f"There is no component named {component_name!r} in the catalog.")
    try:
        oauth2 = parse_descriptor(spec.descriptor, name=component_name).descriptor.oauth2 or {}
    except DescriptorError as exc:
        raise ValidationError(f"{component_name}: its descriptor cannot be read ({exc}).") from None
    if not oauth2:
        raise ValidationError(f"{spec.title} has no OAuth2 settings in its descriptor; enter them by hand.")
    scopes = oauth2.get("scopes") or oauth2.get("scope") or []
    if isinstance(scopes, str):
        scopes = scopes.replace(",", " ").split()
    found = {
        "name": spec.title,
        "authorize_url": str(oauth2.get("auth_uri") or ""),
        "token_url": str(oauth2.get("token_uri") or ""),
        "scopes": [str(s) for s in scopes],
        "component_name": component_name,
        "client_id": "" if _templated(oauth2.get("client_id")) else str(oauth2["client_id"]),
    }
    params = oauth2.get("auth_params") or oauth2.get("params")
    if isinstance(params, dict):
        found["extra_params"] = {str(k): str(v) for k, v in params.items()}
    return found
