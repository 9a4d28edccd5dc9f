"""HMAC signatures, basic auth and header tokens, checked by a running router."""

from __future__ import annotations

import time

import orjson
import pytest

from runtime.bus.keys import TenantKeys
from runtime.router.app import basic_header
from runtime.router.protection import signature
from runtime.router.routes import HookAuth
from tests.runtime.conftest import queued
from tests.runtime.router.conftest import Hooks

BODY = orjson.dumps({"event": "paid", "amount": 12})


def hmac_route(hooks: Hooks, **auth):
    ref = hooks.secret("cred-hmac", secret="s3cret")
    settings = {"header": "X-Signature", "algorithm": "sha256", "prefix": "sha256=", **auth}
    return hooks.route(auth=HookAuth(type="hmac", secret=ref, **settings))


def post(hooks: Hooks, route, headers: dict[str, str], body: bytes = BODY):
    return hooks.client.post(
        hooks.url(route), content=body, headers={"content-type": "application/json", **headers}
    )


def accepted(hooks: Hooks) -> int:
    return len(queued(hooks.harness.bus.redis, hooks.harness.tenant))


def test_hmac_valid_signature_is_accepted(hooks: Hooks) -> None:
    route = hmac_route(hooks)
    good = "sha256=" + signature("s3cret", "sha256", BODY)
    assert post(hooks, route, {"X-Signature": good}).status_code == 202
    # The secret was read once and cached with the route.
    assert post(hooks, route, {"X-Signature": good}).status_code == 202
    assert hooks.secrets.reads == 1


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing the X-Signature signature header"),
        ({"X-Signature": "sha256=" + "0" * 64}, "does not match"),
        ({"X-Signature": signature("s3cret", "sha256", BODY)}, "must start with 'sha256='"),
        ({"X-Signature": "sha256=" + signature("wrong", "sha256", BODY)}, "does not match"),
    ],
)
def test_hmac_missing_or_invalid_is_401(hooks: Hooks, headers, message) -> None:
    route = hmac_route(hooks)
    response = post(hooks, route, headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized" and message in response.json()["message"]
    assert "s3cret" not in response.text
    assert accepted(hooks) == 0


def test_hmac_covers_the_body(hooks: Hooks) -> None:
    route = hmac_route(hooks)
    good = "sha256=" + signature("s3cret", "sha256", BODY)
    assert post(hooks, route, {"X-Signature": good}, body=BODY + b" ").status_code == 401


def test_hmac_sha1_base64(hooks: Hooks) -> None:
    route = hmac_route(hooks, algorithm="sha1", encoding="base64", prefix="")
    good = signature("s3cret", "sha1", BODY, "base64")
    assert post(hooks, route, {"X-Signature": good}).status_code == 202


def test_hmac_with_timestamp_refuses_a_stale_or_missing_timestamp(hooks: Hooks) -> None:
    route = hmac_route(hooks, timestamp_header="X-Timestamp", tolerance_s=60)

    def signed(stamp: str) -> dict[str, str]:
        return {
            "X-Timestamp": stamp,
            "X-Signature": "sha256=" + signature("s3cret", "sha256", stamp.encode() + b"." + BODY),
        }

    now = str(int(time.time()))
    assert post(hooks, route, signed(now)).status_code == 202
    stale = str(int(time.time()) - 600)
    response = post(hooks, route, signed(stale))
    assert response.status_code == 401 and "replayed" in response.json()["message"]
    missing = signed(now)
    del missing["X-Timestamp"]
    assert post(hooks, route, missing).status_code == 401
    # The timestamp is signed: changing it breaks the signature.
    tampered = signed(now)
    tampered["X-Timestamp"] = str(int(now) + 1)
    assert post(hooks, route, tampered).status_code == 401


def test_basic_auth(hooks: Hooks) -> None:
    ref = hooks.secret("cred-basic", username="shop", password="pw")
    route = hooks.route(auth=HookAuth(type="basic", secret=ref))
    response = post(hooks, route, {})
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Basic")
    assert post(hooks, route, {"Authorization": basic_header("shop", "nope")}).status_code == 401
    assert post(hooks, route, {"Authorization": basic_header("nope", "pw")}).status_code == 401
    assert post(hooks, route, {"Authorization": "Basic !!!"}).status_code == 401
    assert post(hooks, route, {"Authorization": basic_header("shop", "pw")}).status_code == 202
    # The caller's credentials do not reach the run's data.
    [(_, fields)] = queued(hooks.harness.bus.redis, hooks.harness.tenant)
    assert "authorization" not in orjson.loads(fields[b"m"])["b"]["data"]["headers"]


def test_header_token(hooks: Hooks) -> None:
    ref = hooks.secret("cred-token", token="tok-123")
    route = hooks.route(auth=HookAuth(type="header", header="X-Api-Key", secret=ref))
    assert post(hooks, route, {}).status_code == 401
    assert post(hooks, route, {"X-Api-Key": "tok-12"}).status_code == 401
    assert post(hooks, route, {"X-Api-Key": "tok-123"}).status_code == 202
    [(_, fields)] = queued(hooks.harness.bus.redis, hooks.harness.tenant)
    assert "x-api-key" not in orjson.loads(fields[b"m"])["b"]["data"]["headers"]


def test_a_secret_that_cannot_be_read_is_503_never_let_through(hooks: Hooks) -> None:
    route = hooks.route(auth=HookAuth(type="header", header="X-Api-Key", secret="deleted-credential"))
    response = post(hooks, route, {"X-Api-Key": "anything"})
    assert response.status_code == 503
    assert accepted(hooks) == 0


def test_a_protection_added_while_a_router_holds_the_old_route_still_applies(hooks: Hooks) -> None:
    """The router learns of the change from the ingress script (STALE) and checks the request again."""
    route = hooks.route()
    assert post(hooks, route, {}).status_code == 202  # the unprotected route is cached now
    ref = hooks.secret("cred-late", secret="s3cret")
    route.auth, route.rev = HookAuth(type="hmac", secret=ref, header="X-Signature"), route.rev + 1
    # Written without an announcement: only the revision check can tell the router.
    hooks.registry.redis.set(f"hub:hook:{route.token}", route.to_document())
    hooks.registry.redis.set(TenantKeys(route.tenant).hook_state(route.token), f"{route.rev}:1")
    assert post(hooks, route, {}).status_code == 401
    good = {"X-Signature": signature("s3cret", "sha256", BODY)}
    assert post(hooks, route, good).status_code == 202
    assert accepted(hooks) == 2


@pytest.mark.parametrize(
    ("auth", "values", "headers"),
    [
        (HookAuth(type="header", header="X-Token"), {"key": "k"}, {"X-Token": ""}),
        (
            HookAuth(type="hmac", header="X-Signature"),
            {"secret": ""},
            {"X-Signature": signature("", "sha256", BODY)},
        ),
    ],
)
def test_a_secret_without_the_expected_value_never_lets_a_request_through(
    hooks: Hooks, auth, values, headers
) -> None:
    auth.secret = hooks.secret("cred-odd", **values)
    route = hooks.route(auth=auth)
    assert post(hooks, route, headers).status_code == 503
    assert accepted(hooks) == 0
