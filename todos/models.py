"""Tables and API shapes for tasks and recurring series (SQLModel ladder:
Base -> Create / Update -> table -> Public). Every timestamp is timezone-aware
UTC (timestamptz); the API renders it as RFC 3339 with "Z"."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, field_serializer, model_validator
from sqlalchemy import Column, DateTime, ForeignKey, Index, Text, UniqueConstraint, Uuid, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

MAX_TAGS = 20
MAX_REMINDERS = 10


def utcnow() -> datetime:
    return datetime.now(UTC)


def _timestamp(nullable: bool = True, **kwargs: Any) -> Any:
    return Field(sa_type=DateTime(timezone=True), nullable=nullable, **kwargs)


def _clean_tags(value: list[str]) -> list[str]:
    cleaned: list[str] = []
    for tag in value:
        tag = tag.strip()
        if not tag or len(tag) > 50:
            raise ValueError("each tag must be 1-50 characters")
        if tag not in cleaned:
            cleaned.append(tag)
    return cleaned


# An RFC 3339 instant with an offset (a naive time is refused), stored as UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(lambda value: value.astimezone(UTC))]
Tags = Annotated[list[str], AfterValidator(_clean_tags)]


class Priority(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


class TaskStatus(StrEnum):
    pending = "pending"
    completed = "completed"
    # An occurrence of a series the user chose to skip; the series moved on.
    skipped = "skipped"


class SeriesStatus(StrEnum):
    active = "active"
    paused = "paused"
    stopped = "stopped"
    # COUNT or UNTIL exhausted: the workflow ended on its own.
    finished = "finished"


class Basis(StrEnum):
    schedule = "schedule"
    completion = "completion"


class ReminderStatus(StrEnum):
    # Its Dapr job fires at `scheduled_for` (job_scheduled_at says Dapr took it).
    scheduled = "scheduled"
    # Claimed by a job callback that is talking to the SMTP server right now.
    sending = "sending"
    sent = "sent"
    # SMTP refused it for good, every attempt failed, or there is no address.
    failed = "failed"
    # The task was completed or skipped before the reminder's time.
    cancelled = "cancelled"
    # Its time had passed when it was set and so had the task's due time.
    skipped = "skipped"


# ---- value objects carried in requests ------------------------------------


class ReminderSpec(SQLModel):
    """Either `before` (ISO 8601 duration before due_at, e.g. "PT15M") or `at`
    (an RFC 3339 instant)."""

    before: timedelta | None = Field(default=None, schema_extra={"examples": ["PT15M"]})
    at: UtcDatetime | None = Field(default=None, schema_extra={"examples": ["2026-12-01T08:45:00Z"]})

    @model_validator(mode="after")
    def _exactly_one(self) -> ReminderSpec:
        if (self.before is None) == (self.at is None):
            raise ValueError("give exactly one of 'before' (ISO 8601 duration) or 'at' (RFC 3339 time)")
        if self.before is not None and self.before < timedelta(0):
            raise ValueError("'before' must be a positive duration such as PT15M")
        return self

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class RecurrenceSpec(SQLModel):
    rule: str = Field(
        min_length=1,
        max_length=500,
        description="An RFC 5545 RRULE (`FREQ=WEEKLY;BYDAY=MO,WE`) or a simple pattern: daily, "
        "weekdays, weekly, monthly, yearly, every N days/weeks/months, last day of month.",
        schema_extra={"examples": ["FREQ=WEEKLY;BYDAY=MO,WE,FR", "every 2 weeks"]},
    )
    timezone: str = Field(default="UTC", max_length=64, schema_extra={"examples": ["America/New_York"]})
    basis: Basis = Field(
        default=Basis.schedule,
        description="`schedule`: next occurrence follows the calendar; `completion`: counted from when "
        "the task was completed.",
    )


# ---- tasks ---------------------------------------------------------------


class TaskBase(SQLModel):
    title: str = Field(min_length=1, max_length=200, schema_extra={"examples": ["Water the plants"]})
    description: str | None = Field(default=None, max_length=10_000, sa_type=Text)
    priority: Priority = Field(default=Priority.medium, sa_type=Text)
    tags: Tags = Field(
        default_factory=list,
        max_length=MAX_TAGS,
        sa_column=Column(ARRAY(Text), nullable=False, server_default=text("'{}'")),
        schema_extra={"examples": [["home"]]},
    )
    due_at: UtcDatetime | None = _timestamp(default=None, schema_extra={"examples": ["2026-12-01T09:00:00Z"]})


class TaskCreate(TaskBase):
    reminders: list[ReminderSpec] = Field(default_factory=list, max_length=MAX_REMINDERS)
    recurrence: RecurrenceSpec | None = None


class TaskUpdate(SQLModel):
    """Only the fields present in the body change; `null` clears an optional field."""

    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    priority: Priority | None = None
    tags: Tags | None = Field(default=None, max_length=MAX_TAGS)
    due_at: UtcDatetime | None = None
    reminders: list[ReminderSpec] | None = Field(default=None, max_length=MAX_REMINDERS)
    recurrence: RecurrenceSpec | None = None


class Task(TaskBase, table=True):
    __tablename__ = "tasks"
    __table_args__ = (
        # Retries and replays of the workflow create each occurrence once.
        UniqueConstraint("series_id", "occurrence_index", name="uq_tasks_series_occurrence"),
        Index("ix_tasks_user_created", "user_id", "created_at", "id"),
        Index("ix_tasks_user_due", "user_id", "due_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: str = Field(max_length=255, sa_type=Text)
    status: TaskStatus = Field(default=TaskStatus.pending, sa_type=Text)
    completed_at: datetime | None = _timestamp(default=None)
    created_at: datetime = _timestamp(nullable=False, default_factory=utcnow)
    updated_at: datetime = _timestamp(nullable=False, default_factory=utcnow)
    reminders: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default=text("'[]'"))
    )
    series_id: uuid.UUID | None = Field(default=None, foreign_key="series.id", index=True)
    occurrence_index: int | None = None
    # Where and how reminders reach the user: the `email` and `zoneinfo`
    # claims of the token that created the task (a series copies them).
    notify_email: str | None = Field(default=None, sa_type=Text)
    notify_timezone: str | None = Field(default=None, sa_type=Text)


class Reminder(SQLModel, table=True):
    """One entry of a task's `reminders`, as the Dapr job `reminder-{task_id}-{n}`.

    `generation` grows each time the job is (re)armed for a new time and
    travels in the job's data, so a firing of an older schedule is ignored.
    """

    __tablename__ = "reminders"
    __table_args__ = (
        UniqueConstraint("task_id", "n", name="uq_reminders_task_n"),
        # The sweeper's scans: unconfirmed, overdue and abandoned reminders.
        Index("ix_reminders_status_scheduled_for", "status", "scheduled_for"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    task_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    # Position in the task's `reminders` list (0-based).
    n: int
    spec: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    # The time the spec names (due_at - before, or at); when the job fires
    # (later than remind_at after a snooze, now for a late-set reminder).
    remind_at: datetime | None = _timestamp(default=None)
    scheduled_for: datetime | None = _timestamp(default=None)
    generation: int = 1
    status: ReminderStatus = Field(default=ReminderStatus.scheduled, sa_type=Text)
    job_scheduled_at: datetime | None = _timestamp(default=None)
    # A callback's claim while it sends; an expired lease may be taken over.
    claim_token: uuid.UUID | None = None
    lease_until: datetime | None = _timestamp(default=None)
    # SMTP attempts for the current generation.
    attempts: int = 0
    sent_at: datetime | None = _timestamp(default=None)
    failure_reason: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = _timestamp(nullable=False, default_factory=utcnow)
    updated_at: datetime = _timestamp(nullable=False, default_factory=utcnow)


class ReminderPublic(SQLModel):
    index: int = Field(description="Position in the task's `reminders` list (0-based).")
    task_id: uuid.UUID
    remind_at: datetime | None = Field(description="The time the reminder names (UTC).")
    scheduled_for: datetime | None = Field(
        description="When the email is due to go out: `remind_at`, or later after a snooze."
    )
    status: ReminderStatus
    sent_at: datetime | None
    attempts: int = Field(description="SMTP attempts for the current schedule.")
    failure_reason: str | None

    @field_serializer("remind_at", "scheduled_for", "sent_at")
    def _utc(self, value: datetime | None) -> str | None:
        return rfc3339(value)


class SnoozeRequest(SQLModel):
    minutes: int = Field(ge=1, le=1440, description="Send the reminder again this many minutes from now.")


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
    reminder_status: list[ReminderPublic] = Field(
        default_factory=list, description="Delivery state of each entry of `reminders`, in order."
    )

    @field_serializer("due_at", "completed_at", "created_at", "updated_at")
    def _utc(self, value: datetime | None) -> str | None:
        return rfc3339(value)


class TaskPage(SQLModel):
    items: list[TaskPublic]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


# ---- recurring series ----------------------------------------------------


class Series(SQLModel, table=True):
    """One recurring series; its workflow instance is `series-{id}`."""

    __tablename__ = "series"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: str = Field(max_length=255, sa_type=Text, index=True)
    rule: str = Field(sa_type=Text)
    timezone: str = Field(sa_type=Text)
    basis: Basis = Field(default=Basis.schedule, sa_type=Text)
    status: SeriesStatus = Field(default=SeriesStatus.active, sa_type=Text, index=True)
    # Occurrence #1 of the series (UTC) and the current one: the engine
    # re-anchors at the current occurrence so its cost does not grow with age.
    dtstart: datetime = _timestamp(nullable=False)
    anchor_at: datetime = _timestamp(nullable=False)
    # Tasks are numbered 1, 2, 3... (the unique key with series_id); the rule
    # index counts the rule's occurrences, missed ones included, for COUNT.
    occurrence_index: int = 1
    rule_index: int = 1
    current_task_id: uuid.UUID | None = None
    occurrences_created: int = 1
    # What each new occurrence copies: title, description, priority, tags, reminder offsets.
    template: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    workflow_started_at: datetime | None = _timestamp(default=None)
    created_at: datetime = _timestamp(nullable=False, default_factory=utcnow)
    updated_at: datetime = _timestamp(nullable=False, default_factory=utcnow)
    ended_at: datetime | None = _timestamp(default=None)


def rfc3339(value: datetime | None) -> str | None:
    """UTC, second precision or finer, with a "Z": 2026-12-01T09:00:00Z."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class WorkflowStatusPublic(SQLModel):
    instance_id: str = Field(schema_extra={"examples": ["series-3f1c…"]})
    runtime_status: str | None = Field(
        default=None, description="RUNNING, COMPLETED, TERMINATED, FAILED, SUSPENDED…; null if unreachable."
    )
    custom_status: dict[str, Any] | None = Field(
        default=None, description="{current_task_id, occurrence_index, next_due_at, paused}"
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
    created_at: str
    updated_at: str
    ended_at: str | None
    workflow: WorkflowStatusPublic


class PreviewRequest(SQLModel):
    rule: str = Field(min_length=1, max_length=500, schema_extra={"examples": ["weekdays"]})
    dtstart: datetime = Field(
        description="First occurrence. Without an offset it is wall time in `timezone`.",
        schema_extra={"examples": ["2026-12-01T09:00:00"]},
    )
    timezone: str = Field(default="UTC", max_length=64, schema_extra={"examples": ["America/New_York"]})
    limit: int = Field(default=10, ge=1, le=100)


class PreviewResponse(SQLModel):
    occurrences: list[str] = Field(
        schema_extra={"examples": [["2026-12-01T14:00:00Z", "2026-12-02T14:00:00Z"]]}
    )
    text: str = Field(schema_extra={"examples": ["every weekday at 09:00 (America/New_York)"]})
