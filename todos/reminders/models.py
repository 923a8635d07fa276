"""Reminders: the spec a task carries, the row per reminder (its Dapr job's state) and its public view."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    field_serializer,
    model_validator,
)
from sqlalchemy import Column, ForeignKey, Index, Text, UniqueConstraint, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from todos.core.fields import (
    RFC3339_DURATION,
    EnumText,
    UtcDatetime,
    duration_text,
    rfc3339,
    text_format,
    timestamp_field,
    utcnow,
)


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


def _whole_positive(offset: timedelta) -> timedelta:
    if offset < timedelta(0):
        raise ValueError("'before' must be a positive duration such as PT15M")
    if offset.microseconds:
        raise ValueError("'before' must be whole seconds, such as PT15M or PT90S")
    return offset


# How long before a task's due time a reminder goes out.
ReminderOffset = Annotated[
    timedelta,
    BeforeValidator(text_format(RFC3339_DURATION, "an ISO 8601 duration such as PT15M or P1D", timedelta)),
    AfterValidator(_whole_positive),
    PlainSerializer(duration_text, return_type=str),
]


class ReminderSpec(SQLModel):
    """Either `before` (ISO 8601 duration before due_at, e.g. "PT15M") or `at`
    (an RFC 3339 instant)."""

    # The schema says "exactly one" too, so generated clients and contract
    # tests know a reminder with both (or neither) is invalid.
    model_config = ConfigDict(  # type: ignore[assignment]
        json_schema_extra={
            "oneOf": [
                {"required": ["before"], "properties": {"before": {"type": "string"}}},
                {"required": ["at"], "properties": {"at": {"type": "string"}}},
            ],
            "examples": [{"before": "PT15M"}, {"at": "2026-12-01T08:45:00Z"}],
        }
    )

    before: ReminderOffset | None = Field(
        default=None, description="ISO 8601 duration before due_at, e.g. PT15M."
    )
    at: UtcDatetime | None = Field(
        default=None, description="An RFC 3339 instant, e.g. 2026-12-01T08:45:00Z."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> ReminderSpec:
        if (self.before is None) == (self.at is None):
            raise ValueError("give exactly one of 'before' (ISO 8601 duration) or 'at' (RFC 3339 time)")
        return self

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


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
    remind_at: datetime | None = timestamp_field(default=None)
    scheduled_for: datetime | None = timestamp_field(default=None)
    generation: int = 1
    status: ReminderStatus = Field(default=ReminderStatus.scheduled, sa_type=EnumText(ReminderStatus))
    job_scheduled_at: datetime | None = timestamp_field(default=None)
    # A callback's claim while it sends; an expired lease may be taken over.
    claim_token: uuid.UUID | None = None
    lease_until: datetime | None = timestamp_field(default=None)
    # SMTP attempts for the current generation.
    attempts: int = 0
    sent_at: datetime | None = timestamp_field(default=None)
    failure_reason: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = timestamp_field(nullable=False, default_factory=utcnow)
    updated_at: datetime = timestamp_field(nullable=False, default_factory=utcnow)


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
    model_config = ConfigDict(json_schema_extra={"examples": [{"minutes": 15}]})  # type: ignore[assignment]

    minutes: int = Field(ge=1, le=1440, description="Send the reminder again this many minutes from now.")


def reminder_public(row: Reminder) -> ReminderPublic:
    """A row as the API shows it: its position in the task's `reminders` is its index."""
    return ReminderPublic.model_validate({**row.model_dump(), "index": row.n})
