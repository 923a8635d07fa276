"""Logging: one JSON object per line (or a readable line for local work),
carrying who and what a line is about.

Every line logged inside a *scope* (an HTTP request, a delivered event, a
workflow activity) carries that scope's fields: `trace_id` (from the
caller's W3C `traceparent`), `user_id`, `task_id`, `event_id` and whatever
else the code adds. A scope is opened where work enters the process; code
deeper down adds what it learns with `annotate` (the auth dependency adds the
user, the service layer the task), and the line the request logs at its end
sees it too.

Fields live in a context variable, so they follow the work into the thread
pool (anyio copies the context) and never leak into another request's lines.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

# The fields the issue asks for, first on every line that has them.
KNOWN_FIELDS = ("trace_id", "user_id", "task_id", "event_id")

# The innermost scope's fields; None outside any scope. The dict is shared
# by everything the scope runs (threads and tasks get copies of the context,
# which still point at it), so `annotate` is seen by the scope's opener.
_fields: ContextVar[dict[str, str] | None] = ContextVar("todo_log_fields", default=None)

# W3C Trace Context: version-traceid-parentid-flags; all-zero ids are invalid.
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-(?!0{32})([0-9a-f]{32})-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def _clean(fields: Mapping[str, object]) -> dict[str, str]:
    return {key: str(value) for key, value in fields.items() if value is not None and value != ""}


@contextmanager
def scope(**fields: object) -> Iterator[dict[str, str]]:
    """Open a scope: until it ends, every line logged in it (and in what it
    runs) carries `fields` and anything annotated inside it. Nested scopes
    inherit the outer one's fields."""
    token = _fields.set({**(_fields.get() or {}), **_clean(fields)})
    try:
        yield current()
    finally:
        _fields.reset(token)


def annotate(**fields: object) -> None:
    """Add fields to the innermost scope. Outside any scope this does
    nothing: a worker thread must not carry one call's ids into the next."""
    fields_now = _fields.get()
    if fields_now is not None:
        fields_now.update(_clean(fields))


def adopt(fields: dict[str, str]) -> None:
    """Make a scope opened elsewhere (another task, e.g. the MCP session
    manager's) the current one of this task."""
    _fields.set(fields)


def current() -> dict[str, str]:
    """The fields of the innermost scope (empty outside one)."""
    return _fields.get() or {}


def trace_id(traceparent: str | None) -> str | None:
    """The trace id of a W3C `traceparent` value, or None if it is not one."""
    if not traceparent:
        return None
    match = _TRACEPARENT.match(traceparent.strip().lower())
    return match.group(1) if match else None


# ---- formatting ---------------------------------------------------------------


def _context_of(record: logging.LogRecord) -> dict[str, Any]:
    """Scope fields, then the record's own `extra=` fields (which win)."""
    fields: dict[str, Any] = dict(getattr(record, "todo_fields", {}))
    for key, value in vars(record).items():
        if key not in _RECORD_ATTRIBUTES and key != "todo_fields":
            fields[key] = value
    return fields


class ScopeFilter(logging.Filter):
    """Stamps each record with the scope's fields where it is logged (the
    handler may format it later, or in another thread)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.todo_fields = dict(current())
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, RFC 3339), level, logger,
    message, the known fields, other context, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = _context_of(record)
        entry.update({key: context.pop(key) for key in KNOWN_FIELDS if key in context})
        entry.update(context)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The classic line for reading in a terminal, context appended."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = _context_of(record)
        if not context:
            return line
        first, newline, rest = line.partition("\n")
        suffix = " ".join(f"{key}={value}" for key, value in context.items())
        return f"{first} [{suffix}]{newline}{rest}"


LogFormat = Literal["json", "text"]


def configure(log_format: LogFormat, level: str = "INFO") -> None:
    """Send every logger's lines (the app's, uvicorn's, the Dapr SDK's, and
    Python warnings) through one handler in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ScopeFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
