"""Single sign-on through an OpenID Connect provider, beside local accounts (HUB_OIDC_* settings).

`begin` sends the browser to the provider with a single-use state, a nonce and a PKCE verifier kept in Redis for
ten minutes; `finish` exchanges the code, checks the ID token's signature (the provider's published keys), issuer,
audience, expiry and nonce, then finds the person: by the provider's subject first, then by a verified e-mail
(which links the account to that subject), then, if the hub is configured so, as a new account without tenants.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
import redis
import requests
import sqlalchemy as sa
from authlib.common.security import generate_token
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from app import one_time
from app.auth.sessions import open_session
from app.config import HubSettings
from app.errors import AuthenticationError, ValidationError
from app.oauth import provider
from app.oauth.provider import ClientConfig, ProviderRefused, ProviderUnreachable
from app.services import audit
from app.services.accounts import normalise_email
from app.storage.db import Database
from app.storage.models import User
from app.storage.scoping import system_session

LOGIN_PATH = "/auth/oidc/login"
CALLBACK_PATH = "/auth/oidc/callback"
STATE_TTL_S = 600
ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
CLOCK_LEEWAY_S = 60


class SsoError(AuthenticationError):
    """Single sign-on did not log the person in; the message says why and what to do."""


@dataclass(frozen=True)
class SsoConfig:
    issuer: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...]
    redirect_uri: str
    create_users: bool
    session_days: int

    @classmethod
    def from_settings(cls, settings: HubSettings) -> SsoConfig | None:
        if not settings.oidc_issuer:
            return None
        return cls(
            issuer=settings.oidc_issuer,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            scopes=tuple(settings.oidc_scopes.split()),
            redirect_uri=settings.effective_public_base_url.rstrip("/") + CALLBACK_PATH,
            create_users=settings.oidc_create_users,
            session_days=settings.session_days,
        )


def _state_key(state: str) -> str:
    return "hub:sso-state:" + hashlib.sha256(state.encode()).hexdigest()


def _hash(binding: str) -> str:
    return hashlib.sha256(binding.encode()).hexdigest()


class SingleSignOn:
    def __init__(self, db: Database, redis_client: redis.Redis, config: SsoConfig) -> None:
        self.db = db
        self.redis = redis_client
        self.config = config

    @functools.cached_property
    def metadata(self) -> dict[str, Any]:
        found = provider.discover(self.config.issuer, egress=None)  # the operator's own setting
        if str(found.get("issuer", "")).rstrip("/") != self.config.issuer.rstrip("/"):
            raise ProviderUnreachable(
                f"the provider calls itself {found.get('issuer')!r}, not {self.config.issuer!r} (HUB_OIDC_ISSUER)"
            )
        return found

    def _client(self) -> ClientConfig:
        return ClientConfig(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            token_url=self.metadata["token_endpoint"],
            authorize_url=self.metadata["authorization_endpoint"],
            scopes=self.config.scopes,
            extra_params={},
        )

    def begin(self, binding: str) -> str:
        """The provider's sign-in URL for one login attempt. `binding`: a random value the browser keeps in a
        cookie, so that only the browser that started the login can finish it (no login CSRF)."""
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(24), generate_token(64)
        pending = {"nonce": nonce, "verifier": verifier, "binding": _hash(binding)}
        self.redis.set(_state_key(state), orjson.dumps(pending), ex=STATE_TTL_S)
        client = dataclasses.replace(self._client(), extra_params={"nonce": nonce})
        return provider.authorization_url(client, self.config.redirect_uri, state, verifier)

    def finish(
        self,
        *,
        state: str,
        code: str,
        binding: str,
        error: str = "",
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> str:
        """Log the person in; returns the session token for the browser's cookie."""
        found = one_time.take(self.redis, _state_key(state or "-"))
        if not found:
            raise SsoError("This sign-in has expired or was already used; log in again.")
        pending = orjson.loads(found)
        if not secrets.compare_digest(pending["binding"], _hash(binding)):
            raise SsoError("This sign-in was started in another browser; log in again here.")
        if error:
            raise SsoError(f"The identity provider did not log you in ({error[:200]}).")
        try:
            token = provider.exchange_code(
                self._client(), self.config.redirect_uri, code, pending["verifier"], egress=None
            )
        except (ProviderRefused, ProviderUnreachable) as exc:
            raise SsoError(
                f"The identity provider did not confirm the sign-in ({exc}); log in again."
            ) from None
        claims = self._verified_claims(str(token.get("id_token") or ""), pending["nonce"])
        with system_session(self.db.sessions) as session:
            user = self._match(session, claims)
            session_token = open_session(
                session, self.db, user, session_days=self.config.session_days, ip=ip, user_agent=user_agent
            )
            audit.record(session, "login.succeeded", actor_user_id=user.id, ip=ip, method="oidc")
        return session_token

    def _verified_claims(self, id_token: str, nonce: str) -> dict[str, Any]:
        if not id_token:
            raise SsoError(
                "The identity provider sent no ID token; is the 'openid' scope in HUB_OIDC_SCOPES?"
            )
        try:
            keys = requests.get(self.metadata["jwks_uri"], timeout=provider.HTTP_TIMEOUT_S).json()
            decoded = jwt.decode(id_token, KeySet.import_key_set(keys), algorithms=list(ID_TOKEN_ALGORITHMS))
            jwt.JWTClaimsRegistry(
                now=int(time.time()),
                leeway=CLOCK_LEEWAY_S,
                # Exactly as the provider names itself (some end it with "/": Auth0 does).
                iss={"essential": True, "value": self.metadata["issuer"]},
                aud={"essential": True, "value": self.config.client_id},
                sub={"essential": True},
                nonce={"essential": True, "value": nonce},
                exp={"essential": True},
            ).validate(decoded.claims)
        except (requests.RequestException, ValueError, KeyError, JoseError) as exc:
            raise SsoError(
                f"The ID token could not be verified ({type(exc).__name__}: {exc}); log in again."
            ) from None
        return dict(decoded.claims)

    def _match(self, session: Any, claims: dict[str, Any]) -> User:
        issuer, subject = self.config.issuer, str(claims["sub"])
        user = session.scalar(sa.select(User).where(User.oidc_issuer == issuer, User.oidc_subject == subject))
        email = None
        if user is None and claims.get("email"):
            try:
                email = normalise_email(str(claims["email"]))
            except ValidationError:  # a provider's odd e-mail claim is treated as none
                email = None
        if user is None and email:
            if claims.get("email_verified") is not True:
                raise SsoError(
                    f"The identity provider has not verified {email}; it cannot be matched to an account here."
                )
            user = session.scalar(sa.select(User).where(User.email == email))
            if user is not None:
                if user.oidc_issuer == issuer and user.oidc_subject not in (None, subject):
                    raise SsoError(f"{email} is linked to another account of this identity provider.")
                user.oidc_issuer, user.oidc_subject = issuer, subject
                audit.record(session, "user.sso_linked", actor_user_id=user.id, issuer=issuer)
        if user is None and email and self.config.create_users:
            user = User(
                id=uuid.uuid4(),
                email=email,
                display_name=str(claims.get("name") or "")[:200],
                password_hash=None,
                oidc_issuer=issuer,
                oidc_subject=subject,
            )
            session.add(user)
            session.flush()
            audit.record(session, "user.created", actor_user_id=user.id, method="oidc")
        if user is None:
            who = email or f"subject {subject}"
            raise SsoError(f"There is no account here for {who}; ask an administrator to add you.")
        if not user.is_active:
            raise SsoError("This account is disabled; ask an administrator.")
        return user
