"""The audit trail: every event consumed from the three topics, once.

`record` takes what Dapr delivered (bulk or single CloudEvents), writes the
valid events to `audit_log` with `INSERT … ON CONFLICT (event_id) DO NOTHING`
(a redelivery is a no-op) and tells Dapr, per message, SUCCESS or RETRY
(database trouble: try again later). It never raises on bad input.

A message that is not an event we can read (malformed, unknown
`event_version`) is put on `<topic>-dlq` by the consumer itself, then
acknowledged. Answering DROP would ask daprd to do it, but daprd 1.18.3's
bulk delivery looks the dropped entry up by its position in the whole batch
within the sub-list it actually delivered: when another entry of the batch
was not JSON, that dead-letters the wrong message or panics the sidecar
(`index out of range`, pkg/runtime/subscription/postman/http DeliverBulk).
Messages that are not even JSON never reach the app; daprd dead-letters them
itself, which works.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

import httpx
from pydantic import ValidationError
from sqlalchemy import BigInteger, Column, Identity, Index, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Field, SQLModel

from todos.core import logs
from todos.core.db import Database
from todos.core.fields import timestamp_field, utcnow
from todos.core.metrics import AUDIT_DUPLICATES, AUDIT_EVENTS, DEAD_LETTERS
from todos.events.schema import REMINDERS, TASK_EVENTS, TaskEvent, UnsupportedVersion, parse_event

log = logging.getLogger(__name__)

Status = Literal["SUCCESS", "RETRY"]
INVALID = "invalid"
UNSUPPORTED = "unsupported_version"
# What GET /v1/tasks/{id}/history lists: the task's lifecycle and reminders
# (a task.updated carries its field changes; task-updates repeats them).
HISTORY_TOPICS = (TASK_EVENTS, REMINDERS)


_INSERT = text(
    """
    INSERT INTO audit_log (event_id, topic, event_type, event_version, user_id, task_id, series_id,
                           occurred_at, recorded_at, payload)
    SELECT event_id, topic, event_type, event_version, user_id, task_id, series_id,
           occurred_at, clock_timestamp(), payload
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
        event_id uuid, topic text, event_type text, event_version text, user_id text, task_id uuid,
        series_id uuid, occurred_at timestamptz, payload jsonb)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
    """
)


class AuditRecord(SQLModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_task", "task_id", "occurred_at", "id"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    # A redelivered event finds its row here and is ignored.
    event_id: uuid.UUID = Field(unique=True)
    topic: str = Field(sa_type=Text)
    event_type: str = Field(sa_type=Text)
    event_version: str = Field(sa_type=Text)
    user_id: str = Field(sa_type=Text)
    task_id: uuid.UUID | None = None
    series_id: uuid.UUID | None = None
    occurred_at: datetime = timestamp_field(nullable=False)
    recorded_at: datetime = timestamp_field(nullable=False, default_factory=utcnow)
    payload: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))


@dataclass(frozen=True)
class Delivery:
    """One message as Dapr hands it over: its id in the request (bulk entry
    id, or the CloudEvent id), the topic and the CloudEvent."""

    entry_id: str
    topic: str
    cloud_event: Any


def _event_of(delivery: Delivery) -> tuple[TaskEvent, dict[str, Any]]:
    """The validated event and the envelope as it came (what gets stored)."""
    cloud_event = delivery.cloud_event
    if not isinstance(cloud_event, dict):
        raise ValueError("the message is not a CloudEvent (a JSON object)")
    data = cloud_event.get("data")
    if isinstance(data, str | bytes):
        data = json.loads(data)
    if not isinstance(data, dict):
        raise ValueError("the CloudEvent's data is not an event (a JSON object)")
    event = parse_event(data)
    if event.topic != delivery.topic:
        raise ValueError(f"{event.event_type} does not belong on topic {delivery.topic}")
    return event, data


def _describe(value: Any) -> str:
    text_value = value if isinstance(value, str) else json.dumps(value, default=str)
    return text_value if len(text_value) <= 300 else text_value[:300] + "…"


def _log_fields(cloud_event: Any) -> dict[str, str | None]:
    """What a message says about itself, for its log lines (it may be
    malformed: only string values are taken)."""
    envelope = cloud_event if isinstance(cloud_event, dict) else {}
    data = envelope.get("data")
    data = data if isinstance(data, dict) else {}

    def text_of(container: dict[str, Any], key: str) -> str | None:
        value = container.get(key)
        return value[:100] if isinstance(value, str) else None

    return {
        "event_id": text_of(data, "event_id"),
        "user_id": text_of(data, "user_id"),
        "task_id": text_of(data, "task_id"),
        "trace_id": logs.trace_id(text_of(envelope, "traceparent")),
    }


def _dead_letter(delivery: Delivery, dead_letters: DeadLetters) -> Status:
    try:
        dead_letters.send(delivery)
    except Exception:  # whatever failed, keep the message: Dapr redelivers it
        log.warning(
            "could not dead-letter a message on %s; asking for redelivery", delivery.topic, exc_info=True
        )
        return "RETRY"
    return "SUCCESS"


def _refuse(delivery: Delivery, error: Exception) -> None:
    """Log and count a message that goes to the dead-letter topic."""
    if isinstance(error, UnsupportedVersion):
        log.error(
            "dead-lettering an event on %s: %s (message: %s)",
            delivery.topic,
            error,
            _describe(delivery.cloud_event),
        )
        AUDIT_EVENTS.labels(UNSUPPORTED).inc()
        return
    reason = error.errors()[0]["msg"] if isinstance(error, ValidationError) else str(error)
    log.warning(
        "dead-lettering a malformed message on %s: %s (message: %s)",
        delivery.topic,
        reason,
        _describe(delivery.cloud_event),
    )
    AUDIT_EVENTS.labels(INVALID).inc()


class DeadLetters(Protocol):
    def send(self, delivery: Delivery) -> None:
        """Put the message on its topic's dead-letter topic; raise if that failed."""
        ...


class SidecarDeadLetters:
    """Dead-letters through this role's sidecar, bytes as received
    (`rawPayload`), keyed like the event when it names a user."""

    def __init__(self, pubsub_name: str, timeout: float = 10.0) -> None:
        from dapr.conf import settings as dapr_settings

        self.url = f"http://{dapr_settings.DAPR_RUNTIME_HOST}:{dapr_settings.DAPR_HTTP_PORT}/v1.0/publish/{pubsub_name}"
        token = dapr_settings.DAPR_API_TOKEN
        self.headers = {"content-type": "application/octet-stream"}
        if token:
            self.headers["dapr-api-token"] = token
        self.timeout = timeout

    def send(self, delivery: Delivery) -> None:
        body = delivery.cloud_event
        params = {"metadata.rawPayload": "true"}
        data = body.get("data") if isinstance(body, dict) else None
        if isinstance(data, dict) and isinstance(data.get("user_id"), str) and data["user_id"]:
            params["metadata.partitionKey"] = data["user_id"]
        content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        response = httpx.post(
            f"{self.url}/{delivery.topic}-dlq",
            params=params,
            content=content,
            headers=self.headers,
            timeout=self.timeout,
        )
        response.raise_for_status()


class AuditLog:
    """Where the audit consumer writes what it receives."""

    def __init__(self, database: Database, dead_letters: DeadLetters) -> None:
        self.database = database
        self.dead_letters = dead_letters

    def record(self, deliveries: list[Delivery]) -> dict[str, Status]:
        """Write the valid events of `deliveries` to the audit log; the status
        of each delivery by entry id."""
        statuses: dict[str, Status] = {}
        events: dict[str, TaskEvent] = {}
        # One row per event id (a batch may carry an event twice, which one
        # INSERT … ON CONFLICT cannot take); the envelope as received, validated.
        rows: dict[uuid.UUID, dict[str, Any]] = {}
        for delivery in deliveries:
            try:
                event, data = _event_of(delivery)
                events[delivery.entry_id] = event
                rows[event.event_id] = {**data, "topic": event.topic}
            except (ValidationError, ValueError, TypeError) as error:
                with logs.scope(**_log_fields(delivery.cloud_event)):
                    _refuse(delivery, error)
                    statuses[delivery.entry_id] = _dead_letter(delivery, self.dead_letters)
        if not events:
            return statuses
        # The batch travels as one JSON parameter: no per-row binding in Python,
        # which costs more than the insert itself at hundreds of rows.
        batch = json.dumps(list(rows.values()))
        try:
            with self.database.session() as session:
                inserted = {uuid.UUID(str(value)) for value in session.scalars(_INSERT, {"rows": batch})}
        except SQLAlchemyError:
            log.warning("writing %d audit events failed; asking for redelivery", len(rows), exc_info=True)
            statuses.update(dict.fromkeys(events, "RETRY"))
            return statuses
        for entry_id, event in events.items():
            statuses[entry_id] = "SUCCESS"
            if event.event_id in inserted:
                AUDIT_EVENTS.labels(event.event_type).inc()
                inserted.discard(event.event_id)
            else:
                AUDIT_DUPLICATES.inc()
        return statuses


def dead_letter(topic: str, cloud_event: Any) -> None:
    """A message reached a dead-letter topic: count it and log it for operators."""
    DEAD_LETTERS.labels(topic).inc()
    with logs.scope(**_log_fields(cloud_event)):
        log.warning("dead letter on %s: %s", topic, _describe(cloud_event))
