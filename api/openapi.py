"""OpenAPI documentation of the error responses: every route lists the
RFC 9457 problem documents it can answer with (as application/problem+json,
which is what api.problems sends), each with an example."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from api.problems import PROBLEM_JSON


class FieldError(BaseModel):
    field: str = Field(
        description="The field at fault, dotted for nested ones.", examples=["recurrence.rule"]
    )
    message: str = Field(examples=["is required"])


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(default="about:blank", examples=["about:blank"])
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str = Field(description="A sentence saying what went wrong and how to fix it.")
    code: str | None = Field(
        default=None,
        description="A stable error code: UNAUTHORIZED, NOT_FOUND, INVALID_INPUT, "
        "INVALID_RECURRENCE_RULE, UNKNOWN_TIMEZONE, UNTIL_BEFORE_DTSTART, RULE_YIELDS_NOTHING, "
        "RULE_TOO_FREQUENT, RULE_TOO_SPARSE, CONFLICT, RATE_LIMITED, UNAVAILABLE…",
    )
    errors: list[FieldError] | None = Field(default=None, description="One entry per field at fault.")


_EXAMPLES: dict[int, dict[str, Any]] = {
    400: {
        "title": "Bad request",
        "detail": "The body is not JSON; send UTF-8 JSON with Content-Type: application/json.",
    },
    401: {
        "title": "Unauthorized",
        "detail": "Send `Authorization: Bearer <JWT>`; the token's `sub` is the user.",
        "code": "UNAUTHORIZED",
    },
    404: {
        "title": "Not found",
        "detail": "No task 3f1c9a52-8f0e-4b7a-9d27-1c5e0f6b2a10 exists for this user.",
        "code": "NOT_FOUND",
        "errors": [
            {
                "field": "task_id",
                "message": "No task 3f1c9a52-8f0e-4b7a-9d27-1c5e0f6b2a10 exists for this user.",
            }
        ],
    },
    409: {
        "title": "Conflict",
        "detail": "The series has ended (stopped); only an active or paused series can pause.",
        "code": "CONFLICT",
        "errors": [
            {
                "field": "series_id",
                "message": "The series has ended (stopped); only an active or paused series can pause.",
            }
        ],
    },
    422: {
        "title": "Invalid request",
        "detail": "recurrence.rule: 'every blue moon' is not a valid RRULE or pattern (unknown pattern); "
        "try 'daily', 'every 2 weeks' or 'FREQ=WEEKLY;BYDAY=MO,WE'.",
        "code": "INVALID_RECURRENCE_RULE",
        "errors": [
            {
                "field": "recurrence.rule",
                "message": "recurrence.rule: 'every blue moon' is not a valid RRULE or pattern (unknown "
                "pattern); try 'daily', 'every 2 weeks' or 'FREQ=WEEKLY;BYDAY=MO,WE'.",
            }
        ],
    },
    429: {
        "title": "Too many requests",
        "detail": "Too many previews from this client; retry in 3 s (each client may preview 20 rules at "
        "once, then 60 a minute).",
        "code": "RATE_LIMITED",
    },
    503: {
        "title": "Service unavailable",
        "detail": "The database is unavailable; retry shortly.",
        "code": "UNAVAILABLE",
    },
}

_DESCRIPTIONS = {
    400: "The body is not JSON.",
    401: "No bearer token, or one that is expired or not valid.",
    404: "No such resource for this user (another user's looks the same).",
    409: "The request conflicts with the resource's state.",
    422: "A field is invalid; `detail` and `errors` name it.",
    429: "Too many requests from this client; `Retry-After` says when to try again.",
    503: "A dependency (database, Dapr sidecar) is unavailable; retry shortly.",
}


def problems(*statuses: int, descriptions: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the listed problem statuses, documented."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        example = {"type": "about:blank", "status": status, **_EXAMPLES[status]}
        response: dict[str, Any] = {
            "description": (descriptions or {}).get(status, _DESCRIPTIONS[status]),
            "content": {
                PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}, "example": example}
            },
        }
        if status == 401:
            response["headers"] = {
                "WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}},
            }
        if status == 503:
            response["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait, when every database connection is in use.",
                    "schema": {"type": "integer"},
                },
            }
        if status == 429:
            response["headers"] = {
                "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}},
            }
        out[status] = response
    return out


def operation_id(route: APIRoute) -> str:
    """operationId = the route function's name (create_task, get_series…):
    what generated clients name their methods, and what links refer to."""
    return route.name


def link(operation: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link: where a value in this response can be used next."""
    return {"operationId": operation, "parameters": parameters}


def install(app: FastAPI) -> None:
    """Add the Problem schema the responses above refer to."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
                servers=app.servers,
            )
            definitions = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(definitions.pop("$defs", {}))
            components["Problem"] = definitions
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
