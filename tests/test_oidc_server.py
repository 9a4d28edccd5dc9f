"""The tests' OpenID provider itself: discovery, code + PKCE through the development login, refresh rotation, the
test-only counters and switches, client_credentials."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.conftest import OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_PLACEHOLDER_REDIRECT
from tests.oidc_server import OidcServer, authorize_without_browser, pkce_pair

AUTH = (OIDC_CLIENT_ID, OIDC_CLIENT_SECRET)


@pytest.fixture
def op(oidc_server: OidcServer) -> OidcServer:
    oidc_server.reset()
    return oidc_server


def discovery(op: OidcServer) -> dict:
    response = op.http.get(op.discovery_url)
    response.raise_for_status()
    return response.json()


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def log_in(op: OidcServer, login: str, scope: str = "openid email profile") -> dict:
    """The whole code flow: authorize through the login and consent pages, then the code for tokens."""
    meta = discovery(op)
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(8)
    query = {
        "response_type": "code",
        "client_id": OIDC_CLIENT_ID,
        "redirect_uri": OIDC_PLACEHOLDER_REDIRECT,
        "scope": scope,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    redirect = authorize_without_browser(f"{meta['authorization_endpoint']}?{urlencode(query)}", login)
    assert redirect.startswith(OIDC_PLACEHOLDER_REDIRECT + "?")
    params = {k: v[0] for k, v in parse_qs(urlsplit(redirect).query).items()}
    assert params["state"] == state
    assert params["iss"] == op.issuer
    response = op.http.post(
        meta["token_endpoint"],
        auth=AUTH,
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": OIDC_PLACEHOLDER_REDIRECT,
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()


def refresh(op: OidcServer, refresh_token: str, *, post_secret: bool = False) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if post_secret:  # client_secret_post instead of HTTP Basic
        return op.http.post("/token", data={**data, "client_id": AUTH[0], "client_secret": AUTH[1]})
    return op.http.post("/token", auth=AUTH, data=data)


def test_discovery_document(op: OidcServer) -> None:
    meta = discovery(op)
    assert meta["issuer"] == op.issuer
    assert meta["token_endpoint"] == f"{op.issuer}/token"
    assert {"authorization_code", "refresh_token", "client_credentials"} <= set(meta["grant_types_supported"])
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["userinfo_endpoint"] == f"{op.issuer}/me"


def test_code_flow_with_pkce_gives_tokens_and_claims(op: OidcServer) -> None:
    tokens = log_in(op, "alice")
    assert {"access_token", "refresh_token", "id_token"} <= tokens.keys()
    claims = jwt_claims(tokens["id_token"])
    assert claims["iss"] == op.issuer
    assert claims["aud"] == OIDC_CLIENT_ID
    assert (claims["sub"], claims["email"], claims["email_verified"], claims["name"]) == (
        "alice",
        "alice@example.com",
        True,
        "alice",
    )
    userinfo = op.http.get(
        discovery(op)["userinfo_endpoint"], headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.json() == {
        "sub": "alice",
        "email": "alice@example.com",
        "email_verified": True,
        "name": "alice",
    }
    assert jwt_claims(log_in(op, "bob@corp.test")["id_token"])["email"] == "bob@corp.test"


def test_code_flow_without_pkce_is_refused(op: OidcServer) -> None:
    query = {
        "response_type": "code",
        "client_id": OIDC_CLIENT_ID,
        "redirect_uri": OIDC_PLACEHOLDER_REDIRECT,
        "scope": "openid",
        "state": "s",
    }
    redirect = authorize_without_browser(f"{op.issuer}/auth?{urlencode(query)}", "alice")
    params = parse_qs(urlsplit(redirect).query)
    assert params["error"] == ["invalid_request"]
    assert "PKCE" in params["error_description"][0]


def test_refresh_rotates_and_reuse_is_invalid_grant(op: OidcServer) -> None:
    first = log_in(op, "carol")["refresh_token"]
    second_response = refresh(op, first)
    assert second_response.status_code == 200, second_response.text
    second = second_response.json()
    assert second["access_token"] and second["refresh_token"] != first

    third_response = refresh(op, second["refresh_token"], post_secret=True)  # the new one works
    assert third_response.status_code == 200, third_response.text

    reuse = refresh(op, first)  # the consumed one does not
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"
    # Reuse detection revokes the whole grant: the newest refresh token is dead too.
    newest = refresh(op, third_response.json()["refresh_token"])
    assert newest.status_code == 400
    assert newest.json()["error"] == "invalid_grant"
    assert op.counts() == {"authorization_code": 1, "refresh_token": 4}


def test_fail_refresh_switch_and_reset(op: OidcServer) -> None:
    token = log_in(op, "dave")["refresh_token"]
    op.fail_refresh(True)
    failed = refresh(op, token)
    assert failed.status_code == 400
    assert failed.json() == {"error": "invalid_grant", "error_description": "refresh token revoked (test)"}
    op.fail_refresh(False)
    assert refresh(op, token).status_code == 200  # the refused request did not consume the token
    assert op.counts() == {"authorization_code": 1, "refresh_token": 2}
    op.reset()
    assert op.counts() == {}


def test_client_credentials(op: OidcServer) -> None:
    response = op.http.post("/token", auth=AUTH, data={"grant_type": "client_credentials"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["access_token"]
    assert body["expires_in"] == op.access_ttl
    assert "refresh_token" not in body
    wrong = op.http.post("/token", auth=(OIDC_CLIENT_ID, "wrong"), data={"grant_type": "client_credentials"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    assert op.counts() == {"client_credentials": 2}


def test_factory_takes_redirect_uris_and_short_ttl(oidc_server_factory: Callable[..., OidcServer]) -> None:
    callback = "http://127.0.0.1:1/oauth/callback"
    op = oidc_server_factory([callback], access_ttl=1)
    try:
        verifier, challenge = pkce_pair()
        query = {
            "response_type": "code",
            "client_id": OIDC_CLIENT_ID,
            "redirect_uri": callback,
            "scope": "openid",
            "state": "xyz",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        redirect = authorize_without_browser(f"{op.issuer}/auth?{urlencode(query)}", "erin")
        code = parse_qs(urlsplit(redirect).query)["code"][0]
        tokens = op.http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": callback,
                "code_verifier": verifier,
                "client_id": OIDC_CLIENT_ID,
                "client_secret": OIDC_CLIENT_SECRET,
            },
        ).json()
        assert tokens["expires_in"] == 1
        # Expiry counts in whole seconds from the start of the current one: gone within 1 s, not 15 s later.
        time.sleep(1.05)
        expired = op.http.get("/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert expired.status_code == 401
        assert refresh(op, tokens["refresh_token"]).status_code == 200
    finally:
        op.stop()
