"""Validation errors become sentences that name the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.problems import validation_errors
from todos.models import TaskCreate

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
