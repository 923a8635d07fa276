"""Recurring series: the spec a task carries, the series table and the preview shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Strict,
    field_serializer,
)
from pydantic import Field as SchemaField
from sqlalchemy import Column, DateTime, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

from todos.core.fields import (
    RFC3339_DATE_TIME_OPTIONAL_OFFSET,
    USER_ID_MAX_LENGTH,
    EnumText,
    UtcDatetime,
    rfc3339,
    text_format,
    timestamp_field,
    utcnow,
)
from todos.series.recurrence.rules import MAX_EXCEPTIONS


class SeriesStatus(StrEnum):
    active = "active"
    paused = "paused"
    stopped = "stopped"
    # COUNT or UNTIL exhausted: the workflow ended on its own.
    finished = "finished"


class Basis(StrEnum):
    schedule = "schedule"
    completion = "completion"


def _wall_or_instant_schema(schema: dict[str, Any]) -> None:
    """Without an offset it is no JSON Schema "date-time": say what is accepted."""
    schema.pop("format", None)
    schema["pattern"] = f"^{RFC3339_DATE_TIME_OPTIONAL_OFFSET.pattern}$"


# An RFC 3339 date-time whose offset may be left out: then it is wall time in the series' zone.
WallOrInstant = Annotated[
    datetime,
    BeforeValidator(
        text_format(
            RFC3339_DATE_TIME_OPTIONAL_OFFSET,
            "an RFC 3339 date-time, with or without its offset, such as 2026-12-01T09:00:00",
            datetime,
        )
    ),
    SchemaField(json_schema_extra=_wall_or_instant_schema),
]


class RecurrenceSpec(SQLModel):
    rule: str = Field(
        min_length=1,
        max_length=500,
        description="An RFC 5545 RRULE (`FREQ=WEEKLY;BYDAY=MO,WE`) or a simple pattern: daily, "
        "weekdays, weekly, monthly, yearly, every N days/weeks/months, last day of month, every mon, wed "
        "and fri, every other tuesday, every weekend, every 2nd and 4th thursday, first monday of the month, "
        "last friday of the month, last weekday of the month. Stored and shown as the RRULE it became.",
        schema_extra={"examples": ["FREQ=WEEKLY;BYDAY=MO,WE,FR", "every 2 weeks"]},
    )
    timezone: str = Field(
        default="UTC",
        max_length=64,
        description="IANA zone. Left out: the person's profile zone (GET /v1/me), then the token's "
        "`zoneinfo`, then UTC for a new series; the series' own zone for a new rule.",
        schema_extra={"examples": ["America/New_York"]},
    )
    basis: Basis = Field(
        default=Basis.schedule,
        description="`schedule`: next occurrence follows the calendar; `completion`: counted from when "
        "the task was completed.",
    )
    exdates: list[WallOrInstant] = Field(
        default_factory=list,
        max_length=MAX_EXCEPTIONS,
        description="Dates the rule gives that the series leaves out (RFC 5545 EXDATE); without an offset, "
        "wall time in `timezone`. Shown as UTC instants. A skip or move of a coming date adds one.",
        schema_extra={"examples": [["2026-12-24T09:00:00"]]},
    )
    rdates: list[WallOrInstant] = Field(
        default_factory=list,
        max_length=MAX_EXCEPTIONS,
        description="Dates the series has beside the rule's (RFC 5545 RDATE); without an offset, wall time "
        "in `timezone`. A move of a coming date adds one. COUNT and UNTIL bound the rule, not these.",
        schema_extra={"examples": [["2026-12-23T14:00:00"]]},
    )

    @field_serializer("exdates", "rdates")
    def _utc(self, values: list[datetime]) -> list[str]:
        return [rfc3339(value) or "" for value in values]


# ---- recurring series ----------------------------------------------------


def _instants_column() -> Any:
    """A list of instants, an empty array by default (what rows written before the column hold)."""
    return Field(
        default_factory=list,
        sa_column=Column(ARRAY(DateTime(timezone=True)), nullable=False, server_default="{}"),
    )


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
    dtstart: datetime = timestamp_field(nullable=False)
    anchor_at: datetime = timestamp_field(nullable=False)
    # Tasks are numbered 1, 2, 3... (the unique key with series_id); the rule
    # index counts the rule's occurrences, missed ones included, for COUNT.
    occurrence_index: int = 1
    rule_index: int = 1
    current_task_id: uuid.UUID | None = None
    occurrences_created: int = 1
    # Where the previous occurrence stood in the rule (its anchor and rule
    # index), kept by each step so that occurrence can be reopened (one step
    # back); None before the first step, after a reopen, and for series last
    # stepped before the columns existed.
    previous_anchor_at: datetime | None = timestamp_field(default=None)
    previous_rule_index: int | None = None
    # What each new occurrence copies: title, description, priority, tags, reminder offsets.
    template: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    # The recurrence set's exceptions (RFC 5545 EXDATE, RDATE), as instants in
    # order: dates skipped or moved ahead of time, and dates added.
    exdates: list[datetime] = _instants_column()
    rdates: list[datetime] = _instants_column()
    workflow_started_at: datetime | None = timestamp_field(default=None)
    # When the sweeper last asked the engine whether the workflow still runs:
    # it looks at the least recently checked series first.
    workflow_checked_at: datetime | None = timestamp_field(default=None)
    created_at: datetime = timestamp_field(nullable=False, default_factory=utcnow)
    updated_at: datetime = timestamp_field(nullable=False, default_factory=utcnow)
    ended_at: datetime | None = timestamp_field(default=None)


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
    dtstart: WallOrInstant = Field(
        description="First occurrence. Without an offset it is wall time in `timezone`.",
        schema_extra={"examples": ["2026-12-01T09:00:00"]},
    )
    timezone: str = Field(default="UTC", max_length=64, schema_extra={"examples": ["America/New_York"]})
    # Strict: "10" or 10.0 is not the integer the schema documents.
    limit: Annotated[int, Strict()] = Field(default=10, ge=1, le=100)


class SkipRequest(SQLModel):
    model_config = ConfigDict(  # type: ignore[assignment]
        json_schema_extra={"examples": [{}, {"due_at": "2026-12-24T14:00:00Z"}]}
    )

    due_at: UtcDatetime | None = Field(
        default=None,
        description="The occurrence to skip, as GET /v1/series/{id}/occurrences lists it: the current one "
        "(the default) or one ahead, which the series then leaves out (an EXDATE).",
        schema_extra={"examples": ["2026-12-24T14:00:00Z"]},
    )


class MoveRequest(SQLModel):
    model_config = ConfigDict(  # type: ignore[assignment]
        json_schema_extra={"examples": [{"due_at": "2026-12-24T14:00:00Z", "to": "2026-12-23T09:00:00"}]}
    )

    due_at: UtcDatetime = Field(
        description="The occurrence to move, as GET /v1/series/{id}/occurrences lists it.",
        schema_extra={"examples": ["2026-12-24T14:00:00Z"]},
    )
    to: WallOrInstant = Field(
        description="Its new time; without an offset, wall time in the series' zone. A date ahead becomes "
        "an EXDATE and an RDATE; the current one gets this due time.",
        schema_extra={"examples": ["2026-12-23T09:00:00"]},
    )


class PreviewResponse(SQLModel):
    occurrences: list[str] = Field(
        schema_extra={"examples": [["2026-12-01T14:00:00Z", "2026-12-02T14:00:00Z"]]}
    )
    text: str = Field(schema_extra={"examples": ["every weekday at 09:00 (America/New_York)"]})


# A series that still creates occurrences (the others have ended).
LIVE_STATUSES = (SeriesStatus.active, SeriesStatus.paused)
