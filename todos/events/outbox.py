"""Transactional outbox: events are rows written in the same transaction as
the change they describe, so a change and its event commit (or roll back)
together. `OutboxRelay` (todos.events.relay) publishes them afterwards.

An insert into `outbox` notifies channel `todo_outbox` (a statement trigger,
see migration 0002), which wakes every relay at commit without polling, even
when the writer is another process.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Identity, Index, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, Session, SQLModel

from todos.core.fields import timestamp_field, utcnow
from todos.events.schema import TaskEvent

NOTIFY_CHANNEL = "todo_outbox"

_INSERT = text(
    """
    INSERT INTO outbox (event_id, topic, partition_key, body, created_at)
    SELECT (r.row -> 'body' ->> 'event_id')::uuid, r.row ->> 'topic', r.row -> 'body' ->> 'user_id',
           r.row -> 'body', (r.row -> 'body' ->> 'occurred_at')::timestamptz
    FROM jsonb_array_elements(CAST(:rows AS jsonb)) WITH ORDINALITY AS r(row, ord)
    ORDER BY r.ord  -- ids (the publish order) follow the order of `events`
    """
)


# Rows the relay still has to publish: neither published nor set aside.
_PENDING_ROW = "published_at IS NULL AND quarantined_at IS NULL"


class OutboxRow(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        # The relay's claim: the oldest unpublished rows, and per user the
        # first unpublished one (the fence that keeps a user's order).
        Index("ix_outbox_pending", "id", postgresql_where=text(_PENDING_ROW)),
        Index("ix_outbox_pending_key", "partition_key", "id", postgresql_where=text(_PENDING_ROW)),
        Index("ix_outbox_published_at", "published_at", postgresql_where=text("published_at IS NOT NULL")),
    )

    # Assigned at insert: the order in which the relay publishes.
    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    event_id: uuid.UUID = Field(unique=True)
    topic: str = Field(sa_type=Text)
    # Kafka partition key: the user, so each user's events stay in order.
    partition_key: str = Field(sa_type=Text)
    body: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = timestamp_field(nullable=False, default_factory=utcnow)
    published_at: datetime | None = timestamp_field(default=None)
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    last_error: str | None = Field(default=None, sa_type=Text)
    # A relay round's claim (todos.events.relay): nobody else publishes the row until then.
    lease_until: datetime | None = timestamp_field(default=None)
    # Failures while the broker took other events; at the limit the row is set aside.
    strikes: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    quarantined_at: datetime | None = timestamp_field(default=None)


def record_event(session: Session, event: TaskEvent) -> TaskEvent:
    """Add `event` to the outbox inside the caller's transaction: it is
    published if and only if the transaction commits."""
    record_events(session, [event])
    return event


def record_events(session: Session, events: Sequence[TaskEvent]) -> None:
    """Several events in one statement (same transaction rule). The rows
    travel as one JSON parameter, so a large batch costs no per-row binding."""
    if not events:
        return
    rows = ",".join(
        f'{{"topic":{json.dumps(event.topic)},"body":{event.model_dump_json()}}}' for event in events
    )
    session.execute(_INSERT, {"rows": f"[{rows}]"})
