"""Errors as JSON: `{"code": ..., "message": ...}` with the HTTP status that fits, for every failure a route can
meet, including a body that does not validate and a path that does not exist."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app.errors import (
    AuthenticationError,
    ConflictError,
    FlowInvalidError,
    HubError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ValidationError,
)
from app.services.credentials import CredentialFieldsError

log = logging.getLogger(__name__)

# The most specific class first: FlowInvalidError is a ValidationError, BackpressureError a RateLimitedError.
_STATUS: tuple[tuple[type[HubError], int, str], ...] = (
    (AuthenticationError, 401, "unauthenticated"),
    (PermissionDeniedError, 403, "forbidden"),
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (FlowInvalidError, 422, "flow_invalid"),
    (CredentialFieldsError, 422, "invalid_fields"),
    (ValidationError, 422, "invalid"),
    (RateLimitedError, 429, "rate_limited"),
)
_HTTP_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
               422: "invalid"}  # fmt: skip


def problem(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"code": code, "message": message, **extra}, status_code=status, headers=headers)


async def _hub_error(request: Request, exc: Exception) -> JSONResponse:
    for cls, status, code in _STATUS:
        if isinstance(exc, cls):
            extra: dict[str, Any] = {}
            if isinstance(exc, FlowInvalidError):
                extra["problems"] = [getattr(p, "__dict__", None) or str(p) for p in exc.problems]
            if isinstance(exc, CredentialFieldsError):
                extra["fields"] = exc.errors
            response = problem(status, code, str(exc), **extra)
            if isinstance(exc, RateLimitedError):
                response.headers["Retry-After"] = str(exc.retry_after_seconds)
            return response
    return problem(400, "refused", str(exc))


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"where": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
        for e in exc.errors()
    ]
    first = details[0] if details else {"where": "", "message": "invalid request"}
    return problem(422, "invalid_request", f"{first['where']}: {first['message']}", errors=details)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return problem(exc.status_code, _HTTP_CODES.get(exc.status_code, "error"), str(exc.detail))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("API request %s %s failed", request.method, request.url.path)
    return problem(500, "internal", "The hub failed to answer this request; the error is in its log.")


def install(app: FastAPI) -> None:
    app.add_exception_handler(HubError, _hub_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
