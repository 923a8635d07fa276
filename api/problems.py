"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.observe import LOG_FIELDS_KEY
from todos.core import logs
from todos.core.errors import DomainError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

# Retry-After when every pooled database connection is in use: they come free
# as transactions end (milliseconds), and this pause spreads a burst's retries.
RETRY_AFTER_SECONDS = 2

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}

# Clearer sentences than pydantic's for the mistakes clients make most.
_MESSAGES = {
    "datetime_parsing": "must be an RFC 3339 date-time such as 2026-12-01T09:00:00Z",
    "datetime_from_date_parsing": "must be an RFC 3339 date-time such as 2026-12-01T09:00:00Z",
    "datetime_type": "must be an RFC 3339 date-time such as 2026-12-01T09:00:00Z",
    "timezone_aware": "needs a UTC offset (RFC 3339), e.g. 2026-12-01T09:00:00Z or 2026-12-01T09:00:00-05:00",
    "time_delta_parsing": "must be an ISO 8601 duration such as PT15M or P1D",
    "missing": "is required",
    "json_invalid": "is not valid JSON",
    "uuid_parsing": "must be a UUID",
    "extra_forbidden": "is not a known field",
}


def problem(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if code:
        body["code"] = code
    body.update(extra)
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


@dataclass(frozen=True)
class Failure:
    """What a client is told of an error, as a problem document (REST) or a tool error (MCP)."""

    status: int
    code: str
    detail: str
    field: str | None = None
    errors: list[dict[str, str]] | None = None
    retry_after: int | None = None


def classify(error: BaseException) -> Failure | None:
    """The one map from an exception to what the client is told; None for a
    crash (answered 500 INTERNAL and logged by the caller). Database failures
    the client may retry are 503: the server down or unreachable, a lost
    connection, or (PoolTimeout, after the engine's pool_timeout) every
    connection of the pool and its overflow in use."""
    if isinstance(error, RequestValidationError | ValidationError):
        errors = validation_errors(list(error.errors()))
        detail = "; ".join(f"{e['field']} {e['message']}" for e in errors) + "."
        field = errors[0]["field"] if len(errors) == 1 else None
        return Failure(422, "INVALID_INPUT", detail, field, errors)
    if isinstance(error, DomainError):
        named = [{"field": error.field, "message": error.detail}] if error.field else None
        return Failure(error.status, error.code, error.detail, error.field, named, error.retry_after)
    if isinstance(error, PoolTimeout):
        detail = (
            f"Every database connection is in use (the service is busy); "
            f"retry in {RETRY_AFTER_SECONDS} seconds."
        )
        return Failure(503, "UNAVAILABLE", detail, retry_after=RETRY_AFTER_SECONDS)
    if isinstance(error, OperationalError):
        return Failure(503, "UNAVAILABLE", "The database is unavailable; retry shortly.")
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return Failure(503, "UNAVAILABLE", "The database connection was lost; retry shortly.")
    return None


def problem_of(failure: Failure) -> JSONResponse:
    extra: dict[str, Any] = {"errors": failure.errors} if failure.errors else {}
    headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else None
    return problem(failure.status, failure.detail, code=failure.code, headers=headers, **extra)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    # Unions add the type name to the location; it means nothing to a client.
    parts = [p for p in parts if not p.startswith(("function-", "tagged-union"))]
    return ".".join(parts) or "body"


def validation_errors(errors: list[Any]) -> list[dict[str, str]]:
    out = []
    for error in errors:
        message = _MESSAGES.get(error["type"])
        if message is None:
            message = str(error["msg"])
            message = message.removeprefix("Value error, ")
            message = message[:1].lower() + message[1:]
        out.append({"field": _field(tuple(error["loc"])), "message": message})
    return out


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path: the router's own 405
    names only the first route that matched the path (RFC 9110 wants all)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
    ]


def install(app: FastAPI) -> None:
    async def _classified(request: Request, exc: Exception) -> JSONResponse:
        failure = classify(exc)
        if failure is None:
            return await _unexpected(request, exc)
        if failure.status == 503:
            # `orig`: the driver's error, without the statement and its parameters.
            log.warning("%s (%s)", failure.detail, getattr(exc, "orig", None) or exc)
        return problem_of(failure)

    for kind in (RequestValidationError, DomainError, OperationalError, PoolTimeout, DBAPIError):
        app.add_exception_handler(kind, _classified)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
        headers = dict(exc.headers or {})
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"No route {request.method} {request.url.path}; see /docs for the API."
        elif exc.status_code == 405:
            allowed = _allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            detail = f"{request.method} is not allowed on {request.url.path}; use {', '.join(allowed)}."
        elif exc.status_code == 400 and detail == "There was an error parsing the body":
            detail = "The body is not JSON; send UTF-8 JSON with Content-Type: application/json."
        return problem(exc.status_code, detail, headers=headers)

    app.add_exception_handler(Exception, _unexpected)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # This handler runs outside api.observe's scope (Starlette calls it
    # from its outermost middleware): log with the request's fields anyway.
    with logs.scope(**request.scope.get(LOG_FIELDS_KEY, {})):
        if isinstance(exc, DBAPIError):
            log.exception("database error on %s %s", request.method, request.url.path)
            return problem(500, "An unexpected database error occurred.", code="INTERNAL")
        log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "An unexpected error occurred; it has been logged.", code="INTERNAL")
