"""What the API shows of a series and of its workflow (the current task included)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlmodel import Field, SQLModel

from todos.core.fields import rfc3339
from todos.dapr import WorkflowInfo
from todos.series.models import Basis, SeriesStatus
from todos.tasks.models import TaskPublic


class WorkflowStatusPublic(SQLModel):
    instance_id: str = Field(schema_extra={"examples": ["series-3f1c…"]})
    runtime_status: str | None = Field(
        default=None, description="RUNNING, COMPLETED, TERMINATED, FAILED, SUSPENDED…; null if unreachable."
    )
    custom_status: dict[str, Any] | None = Field(
        default=None, description="{current_task_id, occurrence_index, next_due_at, paused}"
    )


class WorkflowFailurePublic(SQLModel):
    """Why a workflow failed. Its stack trace is not shown here: it names the
    app's code, and stays in the app's logs and the operator's `./task wf`."""

    error_type: str = Field(schema_extra={"examples": ["TaskFailedError"]})
    message: str = Field(schema_extra={"examples": ["Activity task #3 failed: the database is unavailable"]})


class WorkflowPublic(SQLModel):
    """A workflow instance as the inspect API (`GET /v1/workflows/{instance_id}`) shows it."""

    instance_id: str = Field(schema_extra={"examples": ["series-3f1c9a52-8f0e-4b7a-9d27-1c5e0f6b2a10"]})
    series_id: uuid.UUID | None = Field(
        description="The series it runs; null for an instance of another kind."
    )
    name: str | None = Field(default=None, schema_extra={"examples": ["recurring_task_workflow"]})
    runtime_status: str = Field(
        description="Dapr's runtime status: RUNNING, COMPLETED, CONTINUED_AS_NEW, FAILED, TERMINATED, "
        "SUSPENDED or PENDING. Two more say Dapr holds no state for the instance: PURGED (it ran and its "
        "state was purged) and NOT_STARTED (the series' workflow was not scheduled yet; the app retries).",
        schema_extra={"examples": ["RUNNING"]},
    )
    custom_status: dict[str, Any] | None = Field(
        default=None,
        description="What the workflow reports about itself: "
        "{current_task_id, occurrence_index, next_due_at, paused}.",
        schema_extra={
            "examples": [
                {
                    "current_task_id": "0b6a3c1e-2f4d-4c8e-9a7b-5d3e1f2a4b6c",
                    "occurrence_index": 3,
                    "next_due_at": "2026-12-03T14:00:00Z",
                    "paused": False,
                }
            ]
        },
    )
    created_at: str | None = Field(default=None, schema_extra={"examples": ["2026-12-01T14:00:02Z"]})
    last_updated_at: str | None = Field(default=None, schema_extra={"examples": ["2026-12-02T14:05:11Z"]})
    input: Any = Field(
        default=None,
        description="The current generation's input (parsed JSON): the series state it runs with.",
    )
    output: Any = Field(
        default=None, description="The workflow's result (parsed JSON) once it has completed."
    )
    failure_details: WorkflowFailurePublic | None = Field(
        default=None,
        description="The failure's type and message when the workflow failed.",
        schema_extra={"examples": [None]},
    )


class SeriesPublic(SQLModel):
    id: uuid.UUID
    user_id: str
    rule: str
    timezone: str
    basis: Basis
    text: str = Field(schema_extra={"examples": ["every weekday at 09:00 (America/New_York)"]})
    status: SeriesStatus
    current_task: TaskPublic | None
    next_due_at: str | None
    occurrence_index: int
    occurrences_created: int
    exdates: list[str] = Field(
        default_factory=list, description="Dates of the rule the series leaves out (skipped or moved ahead)."
    )
    rdates: list[str] = Field(default_factory=list, description="Dates beside the rule's (moved or added).")
    created_at: str
    updated_at: str
    ended_at: str | None
    workflow: WorkflowStatusPublic


def json_object(text: str | None) -> dict[str, Any] | None:
    """A custom status as an object, whatever the workflow wrote."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {"raw": text}
    return value if isinstance(value, dict) else {"value": value}


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def workflow_public(info: WorkflowInfo, series_id: uuid.UUID | None) -> WorkflowPublic:
    """What a user sees of a workflow: its failure's type and message, never the stack trace
    (that stays in the app's log and the operator command)."""
    return WorkflowPublic(
        instance_id=info.instance_id,
        series_id=series_id,
        name=info.name,
        runtime_status=info.runtime_status,
        custom_status=json_object(info.serialized_custom_status),
        created_at=rfc3339(info.created_at),
        last_updated_at=rfc3339(info.last_updated_at),
        input=_json(info.serialized_input),
        output=_json(info.serialized_output),
        failure_details=(
            WorkflowFailurePublic(error_type=failure.error_type, message=failure.message)
            if (failure := info.failure_details)
            else None
        ),
    )
