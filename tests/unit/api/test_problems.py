"""Validation errors become sentences that name the field; database trouble a
client may retry is a 503 (a tool error UNAVAILABLE), not a 500."""

from __future__ import annotations

from unittest.mock import MagicMock

import pytest
import sqlalchemy.exc
from fastapi import FastAPI
from fastapi.testclient import TestClient
from mcp.server.mcpserver.exceptions import UnexpectedToolError
from pydantic import ValidationError
from sqlalchemy.pool import QueuePool

from api import problems
from api.mcp.endpoint import _coded
from api.problems import validation_errors
from todos.tasks.models import TaskCreate

pytestmark = pytest.mark.unit


def errors_for(body: dict[str, object]) -> list[dict[str, str]]:
    with pytest.raises(ValidationError) as caught:
        TaskCreate.model_validate(body)
    return validation_errors(caught.value.errors())


def test_fields_are_named_by_their_json_path() -> None:
    errors = errors_for({"title": "x", "reminders": [{"before": "PT5M"}, {"before": "nope"}]})
    assert errors == [
        {"field": "reminders.1.before", "message": "must be an ISO 8601 duration such as PT15M or P1D"}
    ]


def test_naive_times_are_explained() -> None:
    (error,) = errors_for({"title": "x", "due_at": "2026-12-01T09:00:00"})
    assert error["field"] == "due_at" and "UTC offset" in error["message"]


def test_model_level_errors_lose_pydantic_prefixes() -> None:
    (error,) = errors_for({"title": "x", "reminders": [{"before": "PT5M", "at": "2026-12-01T09:00:00Z"}]})
    assert error["field"] == "reminders.0"
    assert error["message"].startswith("give exactly one of")


def pool_exhausted() -> sqlalchemy.exc.TimeoutError:
    """What a QueuePool raises when pool and overflow are all checked out."""
    pool = QueuePool(MagicMock, pool_size=1, max_overflow=0, timeout=0.01)
    held = pool.connect()
    try:
        with pytest.raises(sqlalchemy.exc.TimeoutError) as caught:
            pool.connect()
    finally:
        held.close()
    assert "QueuePool limit of size 1 overflow 0 reached" in str(caught.value)
    return caught.value


def test_an_exhausted_connection_pool_is_a_503_with_retry_after() -> None:
    # Same handlers as the app (api.problems.install); the error is a real pool's.
    app = FastAPI()
    problems.install(app)
    error = pool_exhausted()

    @app.get("/busy")
    def busy() -> None:
        raise error

    response = TestClient(app).get("/busy")
    assert response.status_code == 503 and response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) == problems.RETRY_AFTER_SECONDS
    assert response.json()["code"] == "UNAVAILABLE" and "connection" in response.json()["detail"]


def test_an_exhausted_connection_pool_is_an_unavailable_tool_error() -> None:
    cause = pool_exhausted()
    error = UnexpectedToolError("Error executing tool add_task")
    error.__cause__ = cause
    code, sentence, field = _coded(error) or ("", "", "")
    assert code == "UNAVAILABLE" and field is None
    assert f"retry in {problems.RETRY_AFTER_SECONDS} seconds" in sentence
