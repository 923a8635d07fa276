"""Transactional outbox: events are rows written in the same transaction as
the change they describe, so a change and its event commit (or roll back)
together. `OutboxRelay` (todos.relay) publishes them afterwards.

An insert into `outbox` notifies channel `todo_outbox` (a statement trigger,
see migration 0002), which wakes every relay at commit without polling, even
when the writer is another process.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Identity, Index, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import Field, Session, SQLModel

from todos.events import TaskEvent
from todos.models import _timestamp, utcnow

NOTIFY_CHANNEL = "todo_outbox"


class OutboxRow(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        # The relay's claim: the oldest unpublished rows, and per user the
        # first unpublished one (the fence that keeps a user's order).
        Index("ix_outbox_pending", "id", postgresql_where=text("published_at IS NULL")),
        Index("ix_outbox_pending_key", "partition_key", "id", postgresql_where=text("published_at IS NULL")),
        Index("ix_outbox_published_at", "published_at", postgresql_where=text("published_at IS NOT NULL")),
    )

    # Assigned at insert: the order in which the relay publishes.
    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    event_id: uuid.UUID = Field(unique=True)
    topic: str = Field(sa_type=Text)
    # Kafka partition key: the user, so each user's events stay in order.
    partition_key: str = Field(sa_type=Text)
    body: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = _timestamp(nullable=False, default_factory=utcnow)
    published_at: datetime | None = _timestamp(default=None)
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    last_error: str | None = Field(default=None, sa_type=Text)


def record_event(session: Session, event: TaskEvent) -> TaskEvent:
    """Add `event` to the outbox inside the caller's transaction: it is
    published if and only if the transaction commits."""
    session.execute(
        pg_insert(OutboxRow).values(
            event_id=event.event_id,
            topic=event.topic,
            partition_key=event.user_id,
            body=event.to_json(),
            created_at=event.occurred_at,
        )
    )
    return event
