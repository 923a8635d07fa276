"""Event schema (DESIGN §7): what the outbox publishes and the audit role consumes.

Every event is one versioned envelope

    {event_id, event_type, event_version, occurred_at, user_id, task_id, series_id?, payload}

carried as the `data` of the CloudEvent Dapr wraps around it. Topics:

- `task-events`: the lifecycle of a task, each with the task as it stands
  (`task.created`, `task.updated`, `task.completed`, `task.deleted`);
- `task-updates`: field-level changes, one `task.changed` per change of an
  existing task, payload `{"changes": {field: {"old": …, "new": …}}}`;
- `reminders`: `reminder.scheduled`, `reminder.sent`, `reminder.failed`.

Consumers accept only versions they know (`KNOWN_VERSIONS`): an event of a
newer schema is dead-lettered with a clear log instead of being misread, so
consumers are upgraded before producers.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

EVENT_VERSION = "1.0"
KNOWN_VERSIONS = frozenset({EVENT_VERSION})

TASK_EVENTS = "task-events"
TASK_UPDATES = "task-updates"
REMINDERS = "reminders"
TOPICS = (TASK_EVENTS, REMINDERS, TASK_UPDATES)

TASK_CREATED: Final = "task.created"
TASK_UPDATED: Final = "task.updated"
TASK_COMPLETED: Final = "task.completed"
TASK_DELETED: Final = "task.deleted"
TASK_CHANGED: Final = "task.changed"
REMINDER_SCHEDULED: Final = "reminder.scheduled"
REMINDER_SENT: Final = "reminder.sent"
REMINDER_FAILED: Final = "reminder.failed"

TOPIC_OF: dict[str, str] = {
    TASK_CREATED: TASK_EVENTS,
    TASK_UPDATED: TASK_EVENTS,
    TASK_COMPLETED: TASK_EVENTS,
    TASK_DELETED: TASK_EVENTS,
    TASK_CHANGED: TASK_UPDATES,
    REMINDER_SCHEDULED: REMINDERS,
    REMINDER_SENT: REMINDERS,
    REMINDER_FAILED: REMINDERS,
}
EVENT_TYPES = tuple(TOPIC_OF)

EventType = Literal[
    "task.created",
    "task.updated",
    "task.completed",
    "task.deleted",
    "task.changed",
    "reminder.scheduled",
    "reminder.sent",
    "reminder.failed",
]

# Task fields whose changes `task.changed` reports (what a user can see change).
DIFF_FIELDS = (
    "title",
    "description",
    "priority",
    "tags",
    "due_at",
    "reminders",
    "status",
    "completed_at",
    "recurrence",
    "checklist",
)


class TaskEvent(BaseModel):
    """Version 1.0 of the envelope. Unknown extra fields are ignored, so a
    producer may add optional fields without a version bump."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: uuid.UUID
    event_type: EventType
    event_version: str
    occurred_at: AwareDatetime
    user_id: str = Field(min_length=1, max_length=255)
    task_id: uuid.UUID | None = None
    series_id: uuid.UUID | None = None
    payload: dict[str, Any] = Field(default_factory=dict)

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @property
    def topic(self) -> str:
        return TOPIC_OF[self.event_type]

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def new_event(
    event_type: EventType,
    *,
    user_id: str,
    task_id: uuid.UUID | None,
    series_id: uuid.UUID | None = None,
    payload: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> TaskEvent:
    return TaskEvent(
        event_id=uuid.uuid4(),
        event_type=event_type,
        event_version=EVENT_VERSION,
        occurred_at=occurred_at or datetime.now(UTC),
        user_id=user_id,
        task_id=task_id,
        series_id=series_id,
        payload=payload or {},
    )


ReminderEventType = Literal["reminder.scheduled", "reminder.sent", "reminder.failed"]


def reminder_event(
    event_type: ReminderEventType,
    *,
    user_id: str,
    task_id: uuid.UUID,
    remind_at: datetime,
    series_id: uuid.UUID | None = None,
    reminder: dict[str, Any] | None = None,
    error: str | None = None,
    occurred_at: datetime | None = None,
) -> TaskEvent:
    """A reminder's event, for `todos.outbox.record_event` in the transaction
    that schedules, sends or gives up on it. Payload: `remind_at` (RFC 3339),
    `reminder` (its spec, e.g. {"before": "PT15M"}) and, on failure, `error`."""
    payload: dict[str, Any] = {
        "remind_at": remind_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "reminder": reminder or {},
    }
    if error is not None:
        payload["error"] = error
    return new_event(
        event_type,
        user_id=user_id,
        task_id=task_id,
        series_id=series_id,
        payload=payload,
        occurred_at=occurred_at,
    )


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`{field: {"old": …, "new": …}}` for the fields that differ (JSON values)."""
    return {
        name: {"old": before.get(name), "new": after.get(name)}
        for name in DIFF_FIELDS
        if before.get(name) != after.get(name)
    }


class UnsupportedVersion(ValueError):
    """An envelope of a schema version this consumer does not know."""


def parse_event(data: Any) -> TaskEvent:
    """Validate an incoming envelope. Raises UnsupportedVersion for a version
    this code does not know, and pydantic's ValidationError for anything else
    that is not an event (both mean: dead-letter it, do not retry)."""
    if isinstance(data, dict):
        version = data.get("event_version")
        if version is not None and version not in KNOWN_VERSIONS:
            raise UnsupportedVersion(
                f"event_version {version!r} is not one this consumer knows "
                f"({', '.join(sorted(KNOWN_VERSIONS))}); upgrade the consumer before the producer"
            )
    return TaskEvent.model_validate(data)
