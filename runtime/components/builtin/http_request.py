"""HTTP request: any method, JSON / form / raw bodies, auth from the node's credential.

Server errors (5xx), 429 and network failures raise a retryable StepError, so the worker's retry policy
(backoff with jitter) applies; other 4xx answers are permanent failures: retrying would not help.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from runtime.components.builtin.transform import _evaluate
from runtime.steps.context import StepContext
from runtime.steps.errors import PermanentStepError, StepError
from runtime.steps.message import Message

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
MAX_RESPONSE_BYTES = 10 * 1024 * 1024


def _auth_headers(credential: dict[str, Any] | None) -> tuple[dict[str, str], httpx.Auth | None]:
    if not credential:
        return {}, None
    kind = credential.get("kind")
    if kind == "bearer" or (kind in ("oauth2_code", "oauth2_client") and credential.get("access_token")):
        return {"Authorization": f"Bearer {credential.get('token') or credential.get('access_token')}"}, None
    if kind == "basic":
        return {}, httpx.BasicAuth(str(credential.get("username", "")), str(credential.get("password", "")))
    if kind == "api_key":
        return {str(credential.get("header") or "X-API-Key"): str(credential.get("key", ""))}, None
    return {}, None


def _request_body(message: Message, fields: dict[str, Any]) -> dict[str, Any]:
    body_type = str(fields.get("body_type") or "json")
    if fields.get("body"):
        value = _evaluate(fields, "body", message.data)
    elif body_type == "json":
        value = message.data
    else:
        value = None
    if value is None:
        return {}
    if body_type == "json":
        return {"json": value}
    if body_type == "form":
        if not isinstance(value, dict):
            raise PermanentStepError("a form body must be an object of field names to values")
        return {"data": {str(k): str(v) for k, v in value.items()}}
    if body_type == "raw":
        return {"content": value if isinstance(value, str | bytes) else str(value)}
    raise PermanentStepError(f"unknown body type {body_type!r}; use json, form or raw")


def _parse(response: httpx.Response) -> Any:
    if "json" in response.headers.get("content-type", ""):
        try:
            return response.json()
        except ValueError:
            return response.text
    return response.text


REDIRECT_LIMIT = 5


def request(message: Message, fields: dict[str, Any], context: StepContext) -> Message:
    method = str(fields.get("method") or "GET").upper()
    if method not in METHODS:
        raise PermanentStepError(f"unknown HTTP method {method!r}")
    url = str(fields.get("url") or "")
    if not url.startswith(("http://", "https://")):
        raise PermanentStepError(f"the URL must start with http:// or https:// (got {url!r})")
    configured = fields.get("headers") or {}
    if not isinstance(configured, dict):
        raise PermanentStepError("headers must be an object of header names to values")
    headers = {str(k): str(v) for k, v in configured.items()}
    credential_headers, auth = _auth_headers(context.credential)
    timeout = float(fields.get("timeout_s") or 30)
    body = _request_body(message, fields) if method not in ("GET", "HEAD", "OPTIONS") else {}
    follow = bool(fields.get("follow_redirects", True))
    current, origin, params = url, _origin(url), fields.get("query") or None
    try:
        for hop in range(REDIRECT_LIMIT + 1):
            # Every hop is checked: a public URL must not redirect into the internal network. The credential
            # goes only to the origin it was configured for (like httpx and browsers do).
            same_origin = _origin(current) == origin
            sent_headers = {**headers, **credential_headers} if same_origin else headers
            response = _send(
                context,
                method,
                current,
                sent_headers,
                params,
                auth if same_origin else None,
                body,
                timeout,
                first=hop == 0,
            )
            if not (follow and response.is_redirect):
                break
            current, params = (
                urljoin(current, response.headers["location"]),
                None,
            )  # the query is in the Location
            if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                method, body = "GET", {}
        else:
            raise PermanentStepError(f"{url} redirected more than {REDIRECT_LIMIT} times")
    except httpx.TimeoutException:
        raise StepError(f"{method} {current} timed out after {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise StepError(f"{method} {current} failed: {exc.__class__.__name__}: {exc}") from None
    if len(response.content) > MAX_RESPONSE_BYTES:
        raise PermanentStepError(
            f"{method} {current} answered {len(response.content)} bytes; the limit is 10 MiB"
        )
    if response.status_code >= 500 or response.status_code == 429:
        raise StepError(f"{method} {current} answered {response.status_code}")
    if response.status_code >= 400 and fields.get("fail_on_4xx", True):
        raise PermanentStepError(f"{method} {current} answered {response.status_code}: {response.text[:200]}")
    context.log(f"{method} {current} -> {response.status_code}", "debug")
    return Message(
        data={"status": response.status_code, "headers": dict(response.headers), "body": _parse(response)},
        metadata=message.metadata,
    )


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _send(
    context: StepContext,
    method: str,
    url: str,
    headers: dict[str, str],
    params: Any,
    auth: httpx.Auth | None,
    body: dict[str, Any],
    timeout: float,
    first: bool = True,
) -> httpx.Response:
    # A request counts once against the outbound rate, not again for its redirects: a wait there could end in
    # a retry of the whole step, sending a request that was sent already.
    target = context.egress.check(url, paced=first)
    # Connect to the address that was checked; TLS still verifies the certificate against the host name. A
    # client per hop: a pooled connection verified for one host name must not serve another.
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        return client.request(
            method,
            target.connect_url,
            headers={**headers, "Host": target.host_header},
            params=params,
            auth=auth,
            extensions=extensions,
            **body,
        )


HTTP = {
    "title": "HTTP request",
    "description": "Calls an HTTP API. 5xx, 429 and network errors are retried with backoff; other 4xx fail.",
    "x-hub": {"credential_kinds": ["basic", "bearer", "api_key", "oauth2_code", "oauth2_client"]},
    "actions": {
        "request": {
            "title": "Send a request",
            "main": "builtin:http.request",
            "fields": {
                "method": {"label": "Method", "viewClass": "SelectView", "model": {m: m for m in METHODS}},
                "url": {"label": "URL", "viewClass": "TextFieldView", "required": True},
                "headers": {"label": "Headers", "viewClass": "TextAreaView"},
                "query": {"label": "Query parameters", "viewClass": "TextAreaView"},
                "body_type": {
                    "label": "Body type",
                    "viewClass": "SelectView",
                    "model": {"json": "JSON", "form": "Form", "raw": "Raw"},
                },
                "body": {"label": "Body (JSONata)", "viewClass": "JSONataView"},
                "timeout_s": {"label": "Timeout (s)", "viewClass": "TextFieldView"},
            },
        }
    },
}
