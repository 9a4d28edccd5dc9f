"""Checks of who calls a webhook: HMAC signatures (with an optional timestamp against replay), basic auth and a
header token. Every comparison is constant-time; every refusal says what is wrong without revealing secrets."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from typing import Protocol

from runtime.router.routes import HookAuth

ALGORITHMS = {"sha256": hashlib.sha256, "sha1": hashlib.sha1}
REQUIRED_VALUES = {"basic": ("username", "password"), "header": ("token",), "hmac": ("secret",)}


class Unauthorized(Exception):
    """The request's credentials are missing or wrong (answered 401)."""

    def __init__(self, message: str, *, challenge: str | None = None) -> None:
        super().__init__(message)
        self.challenge = challenge


class SecretUnavailable(Exception):
    """The route's secret cannot be read (deleted credential, vault down): answered 503, never let through."""


class SecretSource(Protocol):
    """Resolves a vault credential of a tenant to its values; the hub implements it with its vault."""

    async def values(self, tenant: str, ref: str) -> dict[str, str]: ...


def _equal(given: str | bytes, expected: str | bytes) -> bool:
    a = given.encode() if isinstance(given, str) else given
    b = expected.encode() if isinstance(expected, str) else expected
    return hmac.compare_digest(a, b)


def signature(secret: str, algorithm: str, payload: bytes, encoding: str = "hex") -> str:
    """The signature a sender computes (used by tests and by the UI's example)."""
    digest = hmac.new(secret.encode(), payload, ALGORITHMS[algorithm]).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def check(auth: HookAuth, values: dict[str, str] | None, headers: dict[str, str], body: bytes) -> None:
    """Raise Unauthorized unless the request satisfies the route's protection."""
    if auth.type == "none":
        return
    if values is None:
        raise SecretUnavailable("the webhook's secret is not available")
    needed = REQUIRED_VALUES.get(auth.type, ())
    if any(not values.get(name) for name in needed):
        # An empty expected value would let an empty header or an empty-key signature through.
        raise SecretUnavailable(f"the webhook's secret lacks {', '.join(needed)}")
    if auth.type == "basic":
        _check_basic(values, headers.get("authorization", ""))
    elif auth.type == "header":
        given = headers.get(auth.header.lower())
        if given is None:
            raise Unauthorized(f"missing the {auth.header} header")
        if not _equal(given, values.get("token", "")):
            raise Unauthorized(f"the {auth.header} header is wrong")
    elif auth.type == "hmac":
        _check_hmac(auth, values.get("secret", ""), headers, body)
    else:  # a route written by a newer hub: refuse rather than let it through
        raise SecretUnavailable(f"unknown webhook protection {auth.type!r}")


def _check_basic(values: dict[str, str], header: str) -> None:
    challenge = 'Basic realm="webhook", charset="UTF-8"'
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise Unauthorized("basic authentication required", challenge=challenge)
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("malformed basic authentication header", challenge=challenge) from None
    # Both compared, always: no early exit that tells a valid user name apart.
    ok_user = _equal(user, values.get("username", ""))
    ok_password = _equal(password, values.get("password", ""))
    if not (sep and ok_user and ok_password):
        raise Unauthorized("wrong user name or password", challenge=challenge)


def _check_hmac(auth: HookAuth, secret: str, headers: dict[str, str], body: bytes) -> None:
    given = headers.get(auth.header.lower())
    if not given:
        raise Unauthorized(f"missing the {auth.header} signature header")
    payload = body
    if auth.timestamp_header:
        stamp = headers.get(auth.timestamp_header.lower())
        if not stamp:
            raise Unauthorized(f"missing the {auth.timestamp_header} timestamp header")
        try:
            sent = float(stamp)
        except ValueError:
            raise Unauthorized(f"the {auth.timestamp_header} header is not a Unix timestamp") from None
        if sent > 1e11:  # milliseconds
            sent /= 1000
        if abs(time.time() - sent) > auth.tolerance_s:
            raise Unauthorized(
                f"the {auth.timestamp_header} timestamp is more than {auth.tolerance_s} s away from now "
                "(replayed or delayed request)"
            )
        payload = stamp.encode() + b"." + body
    if auth.prefix:
        if not given.startswith(auth.prefix):
            raise Unauthorized(f"the {auth.header} header must start with {auth.prefix!r}")
        given = given[len(auth.prefix) :]
    expected = signature(secret, auth.algorithm, payload, auth.encoding)
    if auth.encoding == "hex":
        given = given.strip().lower()
    if not _equal(given.strip(), expected):
        raise Unauthorized(f"the {auth.header} signature does not match the body")
