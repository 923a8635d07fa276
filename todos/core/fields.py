"""The field types every model shares: UTC timestamps (in, stored and out as RFC 3339),
free text, tags, durations, and the enum column type. Validation plumbing only: no tables."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
)
from pydantic import Field as SchemaField
from sqlalchemy import DateTime, Dialect, Text
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field

MAX_TAGS = 20
# The token's `sub`, in every user_id column (and their indexes, whose rows
# PostgreSQL caps at some 2.7 kB): authentication refuses a longer one.
USER_ID_MAX_LENGTH = 255


def utcnow() -> datetime:
    return datetime.now(UTC)


def timestamp_field(nullable: bool = True, **kwargs: Any) -> Any:
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


def text_format(pattern: re.Pattern[str], what: str, *objects: type) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, objects):  # Python callers pass the object itself.
            return value
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ValueError(f"must be {what}")
        return value

    return check


_rfc3339_instant_text = text_format(
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
OMIT_ONLY = SchemaField(json_schema_extra=_drop_null)

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


def rfc3339(value: datetime | None) -> str | None:
    """UTC, second precision or finer, with a "Z": 2026-12-01T09:00:00Z."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
