"""Log lines: JSON with the scope's trace_id, user_id, task_id and event_id;
scopes never leak between requests; the request middleware fills them in."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.observe import Observe
from todos.core import logs
from todos.core.settings import Settings
from todos.events import audit

pytestmark = pytest.mark.unit

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The root logger's lines, formatted as JSON, as the app configures it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.ScopeFilter())
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_in_a_scope_carries_its_fields_first(captured: io.StringIO) -> None:
    with logs.scope(trace_id=logs.trace_id(TRACEPARENT), user_id="alice"):
        logs.annotate(task_id="t-1", event_id=None)
        logging.getLogger("x").info("hello %s", "world", extra={"outcome": "sent"})
    (line,) = lines(captured)
    assert list(line)[:8] == [
        "time",
        "level",
        "logger",
        "message",
        "trace_id",
        "user_id",
        "task_id",
        "outcome",
    ]
    assert line["time"].endswith("Z")
    assert line["message"] == "hello world"
    assert (line["trace_id"], line["user_id"], line["task_id"]) == (TRACE_ID, "alice", "t-1")
    assert "event_id" not in line  # None is left out, not written as null


def test_fields_end_with_their_scope_and_annotate_outside_one_does_nothing(captured: io.StringIO) -> None:
    logs.annotate(user_id="nobody")
    with logs.scope(user_id="alice"):
        with logs.scope(event_id="e-1"):
            logging.getLogger("x").info("inner")
        logging.getLogger("x").info("outer")
    logging.getLogger("x").info("after")
    inner, outer, after = lines(captured)
    assert (inner["user_id"], inner["event_id"]) == ("alice", "e-1")
    assert outer["user_id"] == "alice" and "event_id" not in outer
    assert "user_id" not in after


def test_exceptions_are_one_line_with_the_traceback(captured: io.StringIO) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("x").exception("failed")
    (line,) = lines(captured)
    assert line["level"] == "ERROR"
    assert "ValueError: boom" in line["exception"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (TRACEPARENT, TRACE_ID),
        (TRACEPARENT.upper(), TRACE_ID),
        (f"00-{'0' * 32}-00f067aa0ba902b7-01", None),  # all-zero trace id is invalid
        ("00-abc-def-01", None),
        ("", None),
        (None, None),
    ],
)
def test_trace_id_reads_w3c_traceparent(value: str | None, expected: str | None) -> None:
    assert logs.trace_id(value) == expected


def test_text_format_appends_the_fields() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    with logs.scope(user_id="alice"):
        logs.ScopeFilter().filter(record)
    assert logs.TextFormatter().format(record).endswith("x: hello [user_id=alice]")


def test_json_is_the_default_outside_dev() -> None:
    assert Settings(env="dev").effective_log_format == "text"
    assert Settings(env="dev", log_format="json").effective_log_format == "json"
    production = Settings(env="production", jwt_secret="s" * 40, app_api_token="t" * 40)  # type: ignore[arg-type]
    assert production.effective_log_format == "json"


def test_requests_log_one_access_line_with_trace_user_and_route(captured: io.StringIO) -> None:
    app = FastAPI()
    app.add_middleware(Observe)

    @app.get("/v1/things/{thing_id}")
    def read(thing_id: str) -> dict[str, str]:
        logs.annotate(user_id="alice", task_id=thing_id)
        logging.getLogger("handler").info("reading")
        return {"id": thing_id}

    with TestClient(app) as client:
        assert client.get("/v1/things/42", headers={"traceparent": TRACEPARENT}).status_code == 200
        assert client.get("/v1/things/43").status_code == 200
    handler, access, _, untraced = [
        line for line in lines(captured) if line["logger"] in ("handler", "api.access")
    ]
    assert (handler["trace_id"], handler["user_id"], handler["task_id"]) == (TRACE_ID, "alice", "42")
    assert access["route"] == "/v1/things/{thing_id}" and access["status"] == 200
    assert (access["trace_id"], access["user_id"], access["task_id"]) == (TRACE_ID, "alice", "42")
    assert "trace_id" not in untraced and untraced["task_id"] == "43"


def test_audit_deliveries_log_the_event_they_are_about(captured: io.StringIO) -> None:
    cloud_event = {
        "traceparent": TRACEPARENT,
        "data": {"event_id": "e-1", "user_id": "alice", "task_id": "t-1", "event_version": "9.9"},
    }
    audit.dead_letter("task-events-dlq", cloud_event)
    (line,) = lines(captured)
    assert (line["trace_id"], line["event_id"], line["user_id"], line["task_id"]) == (
        TRACE_ID,
        "e-1",
        "alice",
        "t-1",
    )
