"""Tasks: the SQLModel ladder (Base -> Create / Update -> table -> Public) and the list query."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Strict,
    field_serializer,
)
from sqlalchemy import Column, Index, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

from todos.core.fields import (
    OMIT_ONLY,
    USER_ID_MAX_LENGTH,
    EnumText,
    PlainText,
    Tags,
    TitleText,
    UtcDatetime,
    rfc3339,
    timestamp_field,
    utcnow,
)
from todos.reminders.models import ReminderPublic, ReminderSpec
from todos.series.models import RecurrenceSpec

MAX_REMINDERS = 10
MAX_CHECKLIST_ITEMS = 50


class ChecklistItem(SQLModel):
    """One step of a task; each next occurrence of a series copies it unticked."""

    text: PlainText = Field(
        min_length=1, max_length=200, schema_extra={"examples": ["Take out the recycling"]}
    )
    # Strict: 0 or "yes" is not the boolean the schema documents.
    done: Annotated[bool, Strict()] = False


class Priority(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


class TaskStatus(StrEnum):
    pending = "pending"
    completed = "completed"
    # An occurrence of a series the user chose to skip; the series moved on.
    skipped = "skipped"


# ---- tasks ---------------------------------------------------------------


class TaskBase(SQLModel):
    title: PlainText = Field(min_length=1, max_length=200, schema_extra={"examples": ["Water the plants"]})
    description: PlainText | None = Field(default=None, max_length=10_000, sa_type=Text)
    priority: Priority = Field(default=Priority.medium, sa_type=EnumText(Priority))
    tags: Tags = Field(
        default_factory=list,
        sa_column=Column(ARRAY(Text), nullable=False, server_default=text("'{}'")),
        schema_extra={"examples": [["home"]]},
    )
    due_at: UtcDatetime | None = timestamp_field(
        default=None, schema_extra={"examples": ["2026-12-01T09:00:00Z"]}
    )


class TaskCreate(TaskBase):
    model_config = ConfigDict(  # type: ignore[assignment]
        json_schema_extra={
            "examples": [
                {
                    "title": "Stand-up notes",
                    "description": "What I did, what I will do, blockers.",
                    "priority": "high",
                    "tags": ["work"],
                    "due_at": "2026-12-01T09:00:00-05:00",
                    "reminders": [{"before": "PT10M"}],
                    "recurrence": {"rule": "weekdays", "timezone": "America/New_York", "basis": "schedule"},
                }
            ]
        }
    )

    title: TitleText = Field(min_length=1, max_length=200, schema_extra={"examples": ["Water the plants"]})
    reminders: list[ReminderSpec] = Field(default_factory=list, max_length=MAX_REMINDERS)
    recurrence: RecurrenceSpec | None = None
    checklist: list[ChecklistItem] = Field(default_factory=list, max_length=MAX_CHECKLIST_ITEMS)


class TaskUpdate(SQLModel):
    """Only the fields present in the body change; `null` clears an optional field."""

    model_config = ConfigDict(  # type: ignore[assignment]
        json_schema_extra={
            "examples": [
                {
                    "title": "Team stand-up notes",
                    "due_at": "2026-12-02T09:30:00-05:00",
                    "recurrence": {"rule": "FREQ=WEEKLY;BYDAY=MO,WE,FR", "timezone": "America/New_York"},
                }
            ]
        }
    )

    # Fields that cannot be cleared accept no null (the schema says so too;
    # TaskService names the field when a client sends one anyway).
    title: Annotated[TitleText | None, OMIT_ONLY] = Field(default=None, min_length=1, max_length=200)
    description: PlainText | None = Field(default=None, max_length=10_000)
    priority: Annotated[Priority | None, OMIT_ONLY] = None
    tags: Annotated[Tags | None, OMIT_ONLY] = None
    due_at: UtcDatetime | None = None
    reminders: Annotated[list[ReminderSpec] | None, OMIT_ONLY] = Field(default=None, max_length=MAX_REMINDERS)
    recurrence: Annotated[RecurrenceSpec | None, OMIT_ONLY] = None
    # The whole list: what is sent replaces what the task had.
    checklist: Annotated[list[ChecklistItem] | None, OMIT_ONLY] = Field(
        default=None, max_length=MAX_CHECKLIST_ITEMS
    )


class Task(TaskBase, table=True):
    __tablename__ = "tasks"
    __table_args__ = (
        # Retries and replays of the workflow create each occurrence once.
        UniqueConstraint("series_id", "occurrence_index", name="uq_tasks_series_occurrence"),
        Index("ix_tasks_user_created", "user_id", "created_at", "id"),
        Index("ix_tasks_user_due", "user_id", "due_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: str = Field(max_length=USER_ID_MAX_LENGTH, sa_type=Text)
    status: TaskStatus = Field(default=TaskStatus.pending, sa_type=EnumText(TaskStatus))
    completed_at: datetime | None = timestamp_field(default=None)
    created_at: datetime = timestamp_field(nullable=False, default_factory=utcnow)
    updated_at: datetime = timestamp_field(nullable=False, default_factory=utcnow)
    reminders: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default=text("'[]'"))
    )
    series_id: uuid.UUID | None = Field(default=None, foreign_key="series.id", index=True)
    occurrence_index: int | None = None
    checklist: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default=text("'[]'"))
    )
    # Where and how reminders reach the user: the `email` and `zoneinfo`
    # claims of the token that created the task (a series copies them).
    notify_email: str | None = Field(default=None, sa_type=Text)
    notify_timezone: str | None = Field(default=None, sa_type=Text)


class TaskPublic(TaskBase):
    id: uuid.UUID
    user_id: str
    status: TaskStatus
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    reminders: list[ReminderSpec]
    series_id: uuid.UUID | None
    occurrence_index: int | None
    recurrence: RecurrenceSpec | None = None
    checklist: list[ChecklistItem] = Field(default_factory=list)
    reminder_status: list[ReminderPublic] = Field(
        default_factory=list, description="Delivery state of each entry of `reminders`, in order."
    )

    @field_serializer("due_at", "completed_at", "created_at", "updated_at")
    def _utc(self, value: datetime | None) -> str | None:
        return rfc3339(value)


class TaskFilter(SQLModel):
    """Which of the user's tasks GET /v1/tasks (and the list_tasks tool) returns."""

    status: Literal["pending", "completed", "all"] = Field(
        default="all", description="`pending` for what is still to do."
    )
    due_before: UtcDatetime | None = None
    due_after: UtcDatetime | None = None
    series_id: uuid.UUID | None = Field(default=None, description="The occurrences of one recurring task.")
    tag: PlainText | None = Field(default=None, max_length=50)
    cursor: str | None = Field(
        default=None, max_length=200, description="`next_cursor` of the previous page, unchanged."
    )
    limit: int = Field(default=50, ge=1, le=200)


class TaskPage(SQLModel):
    items: list[TaskPublic]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )
