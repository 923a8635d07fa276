"""A person's calendar feed: the hash of its secret (the URL is shown once) and the public view."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Text
from sqlmodel import Field, SQLModel

from todos.core.fields import USER_ID_MAX_LENGTH, timestamp_field, utcnow


class CalendarFeed(SQLModel, table=True):
    __tablename__ = "calendar_feeds"

    user_id: str = Field(primary_key=True, max_length=USER_ID_MAX_LENGTH, sa_type=Text)
    # SHA-256 of the URL's token, hex: a leaked database does not give the feed away.
    token_hash: str = Field(sa_type=Text, unique=True)
    created_at: datetime = timestamp_field(nullable=False, default_factory=utcnow)


class FeedPublic(SQLModel):
    url: str = Field(
        description="The secret address of the feed: give it to a calendar app as a subscription. Shown "
        "only now; a new POST replaces it (the old one stops working).",
        schema_extra={"examples": ["https://todo.example.com/calendar/3q2-fZx9vT8k.ics"]},
    )
    events_url: str = Field(
        description="The same feed as events (VEVENT), for calendar apps that ignore to-dos (VTODO)."
    )
    created_at: str
