"""Talking to an OAuth2 provider (through authlib): the authorization URL, the token requests of each grant,
discovery and the signed-in account. Errors come back as two exceptions: the provider refused (a person must
act: reconnect, fix the client) or the provider could not be reached (try again later)."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.base import OAuth2Error

from runtime.net.egress import EgressPolicy, EgressRefusedError
from runtime.steps.errors import PermanentStepError, StepError

HTTP_TIMEOUT_S = 10.0


class ProviderRefused(Exception):
    """The provider answered with an OAuth2 error (invalid_grant, invalid_client, ...): retrying will not help."""


class ProviderUnreachable(Exception):
    """No usable answer (network error, timeout, 5xx): the same request may work later."""


@dataclass(frozen=True)
class ClientConfig:
    client_id: str
    client_secret: str
    token_url: str
    authorize_url: str = ""
    userinfo_url: str = ""
    scopes: tuple[str, ...] = ()
    pkce: bool = True
    extra_params: dict[str, str] = field(default_factory=dict)


def _session(config: ClientConfig, **extra: Any) -> OAuth2Session:
    session = OAuth2Session(
        config.client_id,
        config.client_secret,
        scope=" ".join(config.scopes) or None,
        default_timeout=HTTP_TIMEOUT_S,
        **extra,
    )
    return session


# The OAuth2 errors that mean "no, and asking again will not change it" (RFC 6749 5.2); anything else a provider
# answers (temporarily_unavailable, slow_down, a rate limit's own code) is worth trying again later.
REFUSALS = frozenset({
    "invalid_grant", "invalid_client", "unauthorized_client", "invalid_scope", "unsupported_grant_type",
    "invalid_request", "access_denied",
})  # fmt: skip


def _token_call(call: Any) -> dict[str, Any]:
    try:
        token = call()
    except (OAuth2Error, OAuthError) as exc:
        detail = f"{exc.error}: {exc.description or 'no description'}"
        if exc.error in REFUSALS:
            raise ProviderRefused(detail) from None
        raise ProviderUnreachable(f"the token endpoint answered {detail}") from None
    except requests.RequestException as exc:
        raise ProviderUnreachable(f"the token endpoint cannot be reached ({type(exc).__name__})") from None
    except ValueError as exc:  # an answer that is not JSON (a proxy's error page, a 5xx)
        raise ProviderUnreachable(f"the token endpoint did not answer with a token ({exc})") from None
    if not token.get("access_token"):
        raise ProviderUnreachable("the token endpoint answered without an access_token")
    return dict(token)


def check_url(url: str, egress: EgressPolicy | None) -> None:
    """A URL the tenant chose (token, userinfo, discovery) may not point into the hub's own network, unless an
    administrator allows it (HUB_EGRESS_ALLOW). `egress` None: a URL from the hub's own configuration."""
    if egress is None:
        return
    try:
        egress.check(url)
    except EgressRefusedError as exc:
        raise ProviderRefused(str(exc)) from None
    except PermanentStepError as exc:
        raise ProviderRefused(str(exc)) from None
    except StepError as exc:  # DNS: may come back
        raise ProviderUnreachable(str(exc)) from None


def authorization_url(config: ClientConfig, redirect_uri: str, state: str, code_verifier: str | None) -> str:
    session = _session(
        config, redirect_uri=redirect_uri, code_challenge_method="S256" if code_verifier else None
    )
    url, _ = session.create_authorization_url(
        config.authorize_url, state=state, code_verifier=code_verifier, **config.extra_params
    )
    return url


def exchange_code(
    config: ClientConfig,
    redirect_uri: str,
    code: str,
    code_verifier: str | None,
    *,
    egress: EgressPolicy | None,
) -> dict[str, Any]:
    check_url(config.token_url, egress)
    session = _session(config, redirect_uri=redirect_uri)
    extra = {"code_verifier": code_verifier} if code_verifier else {}
    return _token_call(lambda: session.fetch_token(config.token_url, code=code, **extra))


def refresh(config: ClientConfig, refresh_token: str, *, egress: EgressPolicy | None) -> dict[str, Any]:
    check_url(config.token_url, egress)
    session = _session(config)
    return _token_call(lambda: session.refresh_token(config.token_url, refresh_token=refresh_token))


def client_credentials(
    config: ClientConfig, audience: str = "", *, egress: EgressPolicy | None
) -> dict[str, Any]:
    check_url(config.token_url, egress)
    session = _session(config)
    extra = {"audience": audience} if audience else {}
    return _token_call(
        lambda: session.fetch_token(config.token_url, grant_type="client_credentials", **extra)
    )


def token_values(token: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the vault keeps of a token answer. A provider that does not rotate refresh tokens sends none back:
    the one we have stays valid."""
    previous = previous or {}
    values = {
        **previous,
        "access_token": token["access_token"],
        "token_type": token.get("token_type") or "Bearer",
        "refresh_token": token.get("refresh_token") or previous.get("refresh_token"),
        "scope": token.get("scope") or previous.get("scope") or "",
    }
    expires_in = token.get("expires_in")
    values["expires_at"] = time.time() + float(expires_in) if expires_in else token.get("expires_at")
    values["expires_in"] = float(expires_in) if expires_in else None
    if token.get("id_token"):
        values["id_token"] = token["id_token"]
    return {k: v for k, v in values.items() if v is not None}


def unverified_claims(id_token: str) -> dict[str, Any]:
    """The claims of an ID token received straight from the token endpoint over TLS (OpenID Connect Core 3.1.3.7
    lets a client skip the signature check then); used only to name the account, never to log anyone in."""
    try:
        payload = id_token.split(".")[1]
        return orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


def account_name(config: ClientConfig, token: dict[str, Any], *, egress: EgressPolicy | None) -> str:
    """Who signed in, for the Credentials page: from the userinfo endpoint if there is one, else the ID token."""
    claims: dict[str, Any] = {}
    if config.userinfo_url:
        try:
            check_url(config.userinfo_url, egress)
            answer = requests.get(
                config.userinfo_url,
                headers={"Authorization": f"Bearer {token['access_token']}"},
                timeout=HTTP_TIMEOUT_S,
            )
            if answer.ok:
                claims = answer.json()
        except (requests.RequestException, ValueError, ProviderRefused, ProviderUnreachable):
            claims = {}
    if not claims and token.get("id_token"):
        claims = unverified_claims(str(token["id_token"]))
    for key in ("email", "preferred_username", "name", "login", "sub"):
        if claims.get(key):
            return str(claims[key])[:200]
    return ""


def discover(issuer: str, *, egress: EgressPolicy | None) -> dict[str, Any]:
    """The provider's OpenID Connect discovery document (endpoints), or ProviderUnreachable/ProviderRefused."""
    parts = urlsplit(issuer.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ProviderRefused(f"{issuer!r} is not an issuer URL (https://host[/path], no query)")
    url = issuer.strip().rstrip("/") + "/.well-known/openid-configuration"
    check_url(url, egress)
    try:
        answer = requests.get(url, timeout=HTTP_TIMEOUT_S)
        answer.raise_for_status()
        document = answer.json()
    except (requests.RequestException, ValueError) as exc:
        raise ProviderUnreachable(f"{url} does not answer with a discovery document ({exc})") from None
    if not isinstance(document, dict) or "token_endpoint" not in document:
        raise ProviderUnreachable(f"{url} is not an OpenID Connect discovery document")
    return document
