"""Domain errors. Each carries what REST (problem JSON) and MCP (tool errors)
need: a stable code, the field at fault if any, and a sentence to act on."""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "BAD_REQUEST"

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        # Seconds after which the same request may succeed (REST sends it as Retry-After).
        self.retry_after = retry_after
        if code is not None:
            self.code = code


class InvalidInput(DomainError):
    status = 422
    code = "INVALID_INPUT"


class NotFound(DomainError):
    status = 404
    code = "NOT_FOUND"


class Conflict(DomainError):
    status = 409
    code = "CONFLICT"


class Unavailable(DomainError):
    """A dependency (database, sidecar) is down: the client may retry."""

    status = 503
    code = "UNAVAILABLE"
