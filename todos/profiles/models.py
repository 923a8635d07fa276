"""A person's profile: the Base / Update / Public ladder and its table."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, StringConstraints, field_validator
from sqlalchemy import Column, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from todos.core.fields import USER_ID_MAX_LENGTH, timestamp_field, utcnow
from todos.reminders.models import ReminderOffset
from todos.series.recurrence import RecurrenceError
from todos.series.recurrence.engine import zone_of

MAX_DEFAULT_REMINDERS = 10
# RFC 5321: a path is at most 256 octets, two of them the angle brackets.
EMAIL_MAX_OCTETS = 254


# An address a reminder can be sent to: a local part, "@", a domain with a dot;
# no spaces or control characters (they would start a header of the email).
EMAIL_PATTERN = r"^[^@\s\x00-\x1f]+@[^@\s\x00-\x1f]+\.[^@\s\x00-\x1f]+$"


class DefaultReminder(SQLModel):
    """A reminder every new task gets: it counts back from each one's due date."""

    before: ReminderOffset = Field(description="ISO 8601 duration before due_at, e.g. PT15M.")


class ProfileBase(SQLModel):
    timezone: str | None = Field(
        default=None,
        max_length=64,
        description="The person's IANA time zone: a new series without `recurrence.timezone` uses it (then "
        "the token's `zoneinfo`, then UTC), and reminder emails show times in it.",
        schema_extra={"examples": ["Europe/Paris"]},
    )
    email: Annotated[str, StringConstraints(max_length=EMAIL_MAX_OCTETS, pattern=EMAIL_PATTERN)] | None = (
        Field(
            default=None,
            description="Where reminders go (instead of the token's `email`), for every pending task too.",
            schema_extra={"examples": ["ada@example.com"]},
        )
    )
    default_reminders: list[DefaultReminder] = Field(
        default_factory=list,
        max_length=MAX_DEFAULT_REMINDERS,
        description="What a task created with a due date and without `reminders` gets.",
        schema_extra={"examples": [[{"before": "PT15M"}]]},
    )


class ProfileUpdate(ProfileBase):
    """PUT /v1/me: the whole profile; a field left out is cleared."""

    model_config = ConfigDict(  # type: ignore[assignment]
        json_schema_extra={
            "examples": [
                {
                    "timezone": "Europe/Paris",
                    "email": "ada@example.com",
                    "default_reminders": [{"before": "PT15M"}],
                }
            ]
        }
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str | None) -> str | None:
        if name is None:
            return None
        try:
            return str(zone_of(name))
        except RecurrenceError:
            raise ValueError(
                f"{name!r} is not a known IANA time zone; use a name like 'Europe/Paris' or 'UTC'"
            ) from None

    @field_validator("email", mode="before")
    @classmethod
    def _an_address(cls, email: Any) -> Any:
        """Before the schema's pattern, to say it in words; and in bytes, as RFC 5321 counts."""
        if isinstance(email, str) and not re.fullmatch(EMAIL_PATTERN, email):
            raise ValueError(f"{email[:100]!r} is not an email address reminders can be sent to")
        if isinstance(email, str) and len(email.encode()) > EMAIL_MAX_OCTETS:
            raise ValueError(f"an address has at most {EMAIL_MAX_OCTETS} bytes (RFC 5321)")
        return email


class ProfilePublic(ProfileBase):
    user_id: str
    updated_at: str | None = Field(description="When it was last set; null if it never was.")


class Profile(SQLModel, table=True):
    __tablename__ = "profiles"

    user_id: str = Field(primary_key=True, max_length=USER_ID_MAX_LENGTH, sa_type=Text)
    timezone: str | None = Field(default=None, sa_type=Text)
    email: str | None = Field(default=None, sa_type=Text)
    # Stored as the tasks' `reminders` are: [{"before": "PT15M"}].
    default_reminders: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default="[]")
    )
    created_at: datetime = timestamp_field(nullable=False, default_factory=utcnow)
    updated_at: datetime = timestamp_field(nullable=False, default_factory=utcnow)
