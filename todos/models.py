"""Tables and API shapes for tasks and recurring series (SQLModel ladder:
Base -> Create / Update -> table -> Public). Every timestamp is timezone-aware
UTC (timestamptz); the API renders it as RFC 3339 with "Z"."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Strict,
    field_serializer,
    model_validator,
)
from pydantic import Field as SchemaField
from sqlalchemy import Column, DateTime, Dialect, ForeignKey, Index, Text, UniqueConstraint, Uuid, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

MAX_TAGS = 20
MAX_REMINDERS = 10
# The token's `sub`, in every user_id column (and their indexes, whose rows
# PostgreSQL caps at some 2.7 kB): authentication refuses a longer one.
USER_ID_MAX_LENGTH = 255


def utcnow() -> datetime:
    return datetime.now(UTC)


def _timestamp(nullable: bool = True, **kwargs: Any) -> Any:
    return Field(sa_type=DateTime(timezone=True), nullable=nullable, **kwargs)


class EnumText(TypeDecorator[StrEnum]):
    """Plain text in the database, the enum member once read back: a row's
    status or priority then serialises as the enum its model declares (as a
    bare string it made pydantic warn on every dump)."""

    impl = Text
    cache_ok = True

    def __init__(self, enum: type[StrEnum]) -> None:
        super().__init__()
        self.enum = enum

    def process_result_value(self, value: Any, dialect: Dialect) -> StrEnum | None:
        return None if value is None else self.enum(value)


# PostgreSQL text cannot hold NUL: refuse it at the door (422 naming the
# field), not in the database (500).
NO_NUL_PATTERN = "^[^\\u0000]*$"


# Unpaired surrogates: Python's json (FastAPI's body parser) makes them of
# "\ud800", and no UTF-8 column can hold one (the insert would fail with a 500).
_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    if _SURROGATE.search(value):
        raise ValueError("must not contain unpaired surrogates (such as \\ud800): send UTF-8 text")
    return value


def _no_nul_schema(schema: dict[str, Any]) -> None:
    schema["pattern"] = NO_NUL_PATTERN


# Free text a user types (title, description, a tag filter).
PlainText = Annotated[str, AfterValidator(_no_nul), SchemaField(json_schema_extra=_no_nul_schema)]

# A title is one line in lists and email subjects: tab, CR and LF are taken
# (a subject folds them into spaces), other C0/C1 controls are not, nor are
# unpaired surrogates, which no UTF-8 column can hold. The schema leaves the
# surrogates out: an ECMA-262 pattern would see every astral character (an
# emoji) as two of them.
_TITLE_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
TITLE_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"


def _title_text(value: str) -> str:
    if _TITLE_REFUSED.search(value):
        raise ValueError(
            "must not contain control characters other than tab and line breaks "
            "(such as \\u0000 or \\u001b), nor unpaired surrogates"
        )
    return value


# Only what a client sends is checked: rows from before may hold such titles,
# and reading them back must not fail.
TitleText = Annotated[
    str, AfterValidator(_title_text), SchemaField(json_schema_extra={"pattern": TITLE_PATTERN})
]

# The characters stripped around a tag, and the schema's pattern: a tag has
# at least one other character, and no NUL.
_TAG_SPACE = " \t\n\r"
TAG_PATTERN = "^[^\\u0000]*[^ \\t\\n\\r\\u0000][^\\u0000]*$"


def _clean_tags(value: list[str]) -> list[str]:
    cleaned: list[str] = []
    for tag in value:
        if len(tag) > 50 or not tag.strip(_TAG_SPACE) or "\x00" in tag or _SURROGATE.search(tag):
            raise ValueError(
                "each tag must be 1-50 characters, not only spaces, with no NUL (\\u0000) "
                "and no unpaired surrogate"
            )
        tag = tag.strip(_TAG_SPACE)
        if tag not in cleaned:
            cleaned.append(tag)
    return cleaned


# What the documented formats (JSON Schema "date-time" and "duration", both
# RFC 3339) allow. pydantic alone is laxer (numbers as epoch seconds, "P1Y3D",
# no seconds), and a contract that says one thing and accepts another breaks
# generated clients; so text must match these before pydantic reads it.
_DATE_TIME = r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?"
_OFFSET = r"([Zz]|[+-]\d{2}:\d{2})"
RFC3339_DATE_TIME = re.compile(_DATE_TIME + _OFFSET)
RFC3339_DATE_TIME_OPTIONAL_OFFSET = re.compile(_DATE_TIME + _OFFSET + "?")
_DUR_TIME = r"T(\d+H(\d+M(\d+S)?)?|\d+M(\d+S)?|\d+S)"
RFC3339_DURATION = re.compile(rf"P((\d+D|\d+M(\d+D)?|\d+Y(\d+M(\d+D)?)?)({_DUR_TIME})?|{_DUR_TIME}|\d+W)")


def _text_format(pattern: re.Pattern[str], what: str, *objects: type) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, objects):  # Python callers pass the object itself.
            return value
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ValueError(f"must be {what}")
        return value

    return check


_rfc3339_instant_text = _text_format(
    RFC3339_DATE_TIME, "an RFC 3339 date-time such as 2026-12-01T09:00:00Z", datetime
)


def _instant(value: Any) -> Any:
    if (
        isinstance(value, str)
        and RFC3339_DATE_TIME_OPTIONAL_OFFSET.fullmatch(value)
        and not RFC3339_DATE_TIME.fullmatch(value)
    ):
        raise ValueError(
            "needs a UTC offset (RFC 3339), e.g. 2026-12-01T09:00:00Z or 2026-12-01T09:00:00-05:00"
        )
    return _rfc3339_instant_text(value)


def duration_text(value: timedelta) -> str:
    """ISO 8601 in the RFC 3339 (appendix A) form JSON Schema's "duration"
    format accepts: days, then a contiguous run of hours/minutes/seconds
    (P1DT2H, PT15M, PT1H0M30S). pydantic's own form (P1Y3D) is not valid there."""
    days, rest = divmod(int(value.total_seconds()), 86_400)
    parts = dict(zip("HMS", (rest // 3600, rest % 3600 // 60, rest % 60), strict=True))
    units = [unit for unit, amount in parts.items() if amount]
    time = ""
    if units:
        span = "HMS"["HMS".index(units[0]) : "HMS".index(units[-1]) + 1]
        time = "T" + "".join(f"{parts[unit]}{unit}" for unit in span)
    if not days and not time:
        return "PT0S"
    return "P" + (f"{days}D" if days else "") + time


def _drop_null(schema: dict[str, Any]) -> None:
    branches = [branch for branch in schema.pop("anyOf", []) if branch.get("type") != "null"]
    if len(branches) == 1:
        schema.update(branches[0])


# A field a PATCH may omit but not clear: its schema shows no null.
_OMIT_ONLY = SchemaField(json_schema_extra=_drop_null)

# An RFC 3339 instant with an offset (a naive time is refused), stored as UTC.
UtcDatetime = Annotated[
    AwareDatetime,
    BeforeValidator(_instant),
    AfterValidator(lambda value: value.astimezone(UTC)),
]
Tags = Annotated[
    # The item rules are _clean_tags' (whose messages are clearer); the schema repeats them.
    list[
        Annotated[
            str, SchemaField(json_schema_extra={"minLength": 1, "maxLength": 50, "pattern": TAG_PATTERN})
        ]
    ],
    SchemaField(max_length=MAX_TAGS),
    AfterValidator(_clean_tags),
]


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

    before: (
        Annotated[
            timedelta,
            BeforeValidator(
                _text_format(RFC3339_DURATION, "an ISO 8601 duration such as PT15M or P1D", timedelta)
            ),
        ]
        | None
    ) = Field(default=None, description="ISO 8601 duration before due_at, e.g. PT15M.")
    at: UtcDatetime | None = Field(
        default=None, description="An RFC 3339 instant, e.g. 2026-12-01T08:45:00Z."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> ReminderSpec:
        if (self.before is None) == (self.at is None):
            raise ValueError("give exactly one of 'before' (ISO 8601 duration) or 'at' (RFC 3339 time)")
        if self.before is not None and self.before < timedelta(0):
            raise ValueError("'before' must be a positive duration such as PT15M")
        if self.before is not None and self.before.microseconds:
            raise ValueError("'before' must be whole seconds, such as PT15M or PT90S")
        return self

    @field_serializer("before")
    def _duration(self, value: timedelta | None) -> str | None:
        return None if value is None else duration_text(value)

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
    title: PlainText = Field(min_length=1, max_length=200, schema_extra={"examples": ["Water the plants"]})
    description: PlainText | None = Field(default=None, max_length=10_000, sa_type=Text)
    priority: Priority = Field(default=Priority.medium, sa_type=EnumText(Priority))
    tags: Tags = Field(
        default_factory=list,
        sa_column=Column(ARRAY(Text), nullable=False, server_default=text("'{}'")),
        schema_extra={"examples": [["home"]]},
    )
    due_at: UtcDatetime | None = _timestamp(default=None, schema_extra={"examples": ["2026-12-01T09:00:00Z"]})


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
    title: Annotated[TitleText | None, _OMIT_ONLY] = Field(default=None, min_length=1, max_length=200)
    description: PlainText | None = Field(default=None, max_length=10_000)
    priority: Annotated[Priority | None, _OMIT_ONLY] = None
    tags: Annotated[Tags | None, _OMIT_ONLY] = None
    due_at: UtcDatetime | None = None
    reminders: Annotated[list[ReminderSpec] | None, _OMIT_ONLY] = Field(
        default=None, max_length=MAX_REMINDERS
    )
    recurrence: Annotated[RecurrenceSpec | None, _OMIT_ONLY] = None


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
    status: ReminderStatus = Field(default=ReminderStatus.scheduled, sa_type=EnumText(ReminderStatus))
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
    model_config = ConfigDict(json_schema_extra={"examples": [{"minutes": 15}]})  # type: ignore[assignment]

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


# ---- recurring series ----------------------------------------------------


class Series(SQLModel, table=True):
    """One recurring series; its workflow instance is `series-{id}`."""

    __tablename__ = "series"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: str = Field(max_length=USER_ID_MAX_LENGTH, sa_type=Text, index=True)
    rule: str = Field(sa_type=Text)
    timezone: str = Field(sa_type=Text)
    basis: Basis = Field(default=Basis.schedule, sa_type=EnumText(Basis))
    status: SeriesStatus = Field(default=SeriesStatus.active, sa_type=EnumText(SeriesStatus), index=True)
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
    # When the sweeper last asked the engine whether the workflow still runs:
    # it looks at the least recently checked series first.
    workflow_checked_at: datetime | None = _timestamp(default=None)
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
    created_at: str
    updated_at: str
    ended_at: str | None
    workflow: WorkflowStatusPublic


def _wall_or_instant_schema(schema: dict[str, Any]) -> None:
    """Without an offset it is no JSON Schema "date-time": say what is accepted."""
    schema.pop("format", None)
    schema["pattern"] = f"^{RFC3339_DATE_TIME_OPTIONAL_OFFSET.pattern}$"


class PreviewRequest(SQLModel):
    model_config = ConfigDict(  # type: ignore[assignment]
        json_schema_extra={
            "examples": [
                {
                    "rule": "weekdays",
                    "dtstart": "2026-12-01T09:00:00",
                    "timezone": "America/New_York",
                    "limit": 5,
                }
            ]
        }
    )

    rule: str = Field(min_length=1, max_length=500, schema_extra={"examples": ["weekdays"]})
    dtstart: Annotated[
        datetime,
        BeforeValidator(
            _text_format(
                RFC3339_DATE_TIME_OPTIONAL_OFFSET,
                "an RFC 3339 date-time, with or without its offset, such as 2026-12-01T09:00:00",
                datetime,
            )
        ),
        SchemaField(json_schema_extra=_wall_or_instant_schema),
    ] = Field(
        description="First occurrence. Without an offset it is wall time in `timezone`.",
        schema_extra={"examples": ["2026-12-01T09:00:00"]},
    )
    timezone: str = Field(default="UTC", max_length=64, schema_extra={"examples": ["America/New_York"]})
    # Strict: "10" or 10.0 is not the integer the schema documents.
    limit: Annotated[int, Strict()] = Field(default=10, ge=1, le=100)


class PreviewResponse(SQLModel):
    occurrences: list[str] = Field(
        schema_extra={"examples": [["2026-12-01T14:00:00Z", "2026-12-02T14:00:00Z"]]}
    )
    text: str = Field(schema_extra={"examples": ["every weekday at 09:00 (America/New_York)"]})
