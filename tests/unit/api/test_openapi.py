"""The OpenAPI document describes every route the way the app answers: problem
documents for errors, examples, links between operations; and the models take
exactly the text formats the schema documents."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from api.app import create_app
from todos.core.fields import RFC3339_DURATION, duration_text
from todos.core.settings import Settings
from todos.reminders.models import ReminderSpec
from todos.series.models import PreviewRequest
from todos.tasks.models import TaskCreate, TaskUpdate

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(Settings(env="dev"), background=False).openapi()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, item in spec["paths"].items() for method, op in item.items()]


def test_every_error_response_is_a_documented_problem_with_an_example(spec: dict[str, Any]) -> None:
    for method, path, op in operations(spec):
        for status, response in op["responses"].items():
            if status.startswith("2") or status == "304":  # 304: a conditional GET's "unchanged", no body
                continue
            (media_type,) = response["content"]
            assert media_type == "application/problem+json", (method, path, status)
            assert response["content"][media_type]["schema"] == {"$ref": "#/components/schemas/Problem"}
            assert response["content"][media_type]["example"]["status"] == int(status)
        if op.get("security"):
            assert "401" in op["responses"], (method, path)
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in op["responses"], (method, path)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_every_request_body_and_route_has_examples(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for method, path, op in operations(spec):
        body = op.get("requestBody")
        if body:
            ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
            assert schemas[ref].get("examples"), (method, path)
        for parameter in op.get("parameters", []):
            if parameter["in"] == "path" and parameter["name"] not in ("task_id", "series_id"):
                assert parameter["schema"].get("examples"), (method, path, parameter["name"])


def test_operation_ids_are_the_route_names_and_links_point_at_them(spec: dict[str, Any]) -> None:
    ids = {op["operationId"] for _, _, op in operations(spec)}
    assert {
        "create_task",
        "get_series",
        "pause_series",
        "stop_series",
        "get_workflow",
        "preview_recurrence",
    } <= ids
    for _, _, op in operations(spec):
        for response in op["responses"].values():
            for link in response.get("links", {}).values():
                assert link["operationId"] in ids


def test_a_405_names_every_method_of_the_path() -> None:
    client = TestClient(create_app(Settings(env="dev"), background=False))
    response = client.request("PUT", "/v1/tasks")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) >= {"GET", "POST"}
    assert response.json()["detail"].startswith("PUT is not allowed on /v1/tasks; use ")


def _accepts(model: Any, body: dict[str, Any]) -> bool:
    try:
        model.model_validate(body)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (TaskCreate, {"title": "x", "due_at": 0}),
        (TaskCreate, {"title": "x", "due_at": "1700000000"}),
        (TaskCreate, {"title": "x", "due_at": "2026-12-01T09:00Z"}),
        (TaskCreate, {"title": "x\x00"}),
        (TaskCreate, {"title": "x\x1b[31m"}),
        (TaskUpdate, {"title": "next\x85line"}),
        (TaskCreate, {"title": "x", "tags": [" "]}),
        (TaskCreate, {"title": "x", "tags": ["a"] * 21}),
        (TaskCreate, {"title": "x", "reminders": [{"before": 900}]}),
        (TaskCreate, {"title": "x", "reminders": [{"before": "P1Y3D"}]}),
        (TaskCreate, {"title": "x", "reminders": [{"before": "PT1.5S"}]}),
        (TaskCreate, {"title": "x", "reminders": [{"before": "PT5M", "at": "2026-12-01T09:00:00Z"}]}),
        (TaskUpdate, {"tags": ["a"] * 21}),
        (PreviewRequest, {"rule": "daily", "dtstart": 0}),
        (PreviewRequest, {"rule": "daily", "dtstart": "2026-12-01"}),
        (PreviewRequest, {"rule": "daily", "dtstart": "2026-12-01T09:00:00", "limit": "10"}),
    ],
)
def test_what_the_schema_calls_invalid_is_refused(model: Any, body: dict[str, Any]) -> None:
    schema = jsonschema_rs.validator_for(model.model_json_schema(), validate_formats=True)
    assert not schema.is_valid(body)
    assert not _accepts(model, body)


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (TaskCreate, {"title": "x", "due_at": "2026-12-01t09:00:00.5-05:00", "tags": [" a "]}),
        (
            TaskCreate,
            {
                "title": "x",
                "reminders": [{"before": "P1Y2M3D"}, {"before": "P2W"}, {"at": "2026-12-01T09:00:00Z"}],
            },
        ),
        (TaskUpdate, {"description": None, "due_at": None}),
        (TaskUpdate, {"title": "Buy:\r\nMilk: 2L\t🥛"}),
        (PreviewRequest, {"rule": "daily", "dtstart": "2026-12-01T09:00:00", "limit": 100}),
    ],
)
def test_what_the_schema_calls_valid_is_accepted(model: Any, body: dict[str, Any]) -> None:
    schema = jsonschema_rs.validator_for(model.model_json_schema(), validate_formats=True)
    assert schema.is_valid(body)
    assert _accepts(model, body)


@given(st.integers(min_value=0, max_value=10**9))
def test_reminder_offsets_are_written_in_the_documented_duration_format(seconds: int) -> None:
    text = duration_text(timedelta(seconds=seconds))
    assert RFC3339_DURATION.fullmatch(text), text
    assert ReminderSpec.model_validate({"before": text}).before == timedelta(seconds=seconds)
