"""The event envelope (DESIGN §7), its diff, and what consumers accept."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from tests.helpers import event_envelope
from todos.events import schema as events

pytestmark = pytest.mark.unit


def test_each_event_type_has_its_topic() -> None:
    assert {events.TOPIC_OF[t] for t in events.EVENT_TYPES} == set(events.TOPICS)
    assert events.TOPIC_OF[events.TASK_CHANGED] == events.TASK_UPDATES
    assert events.TOPIC_OF[events.REMINDER_SENT] == events.REMINDERS
    assert events.TOPIC_OF[events.TASK_DELETED] == events.TASK_EVENTS


def test_new_event_is_a_versioned_event_envelope() -> None:
    task_id, series_id = uuid.uuid4(), uuid.uuid4()
    event = events.new_event(
        events.TASK_COMPLETED, user_id="alice", task_id=task_id, series_id=series_id, payload={"k": 1}
    )
    data = event.to_json()
    assert set(data) == {
        "event_id",
        "event_type",
        "event_version",
        "occurred_at",
        "user_id",
        "task_id",
        "series_id",
        "payload",
    }
    assert data["event_version"] == "1.0"
    assert data["task_id"] == str(task_id) and data["series_id"] == str(series_id)
    assert event.topic == "task-events"
    assert events.parse_event(data) == event


def test_occurred_at_is_normalised_to_utc() -> None:
    event = events.parse_event(event_envelope())
    assert event.occurred_at == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("version", ["2.0", "1.1", "0.9"])
def test_unknown_versions_are_refused_by_name(version: str) -> None:
    with pytest.raises(events.UnsupportedVersion, match=rf"event_version '{version}'"):
        events.parse_event(event_envelope(event_version=version))


@pytest.mark.parametrize(
    "overrides",
    [
        {"event_version": None},
        {"event_type": "task.exploded"},
        {"event_id": "not-a-uuid"},
        {"user_id": ""},
        {"occurred_at": "2026-12-01T09:00:00"},  # no offset: ambiguous
        {"payload": ["not", "an", "object"]},
    ],
)
def test_malformed_envelopes_fail_validation(overrides: dict[str, object]) -> None:
    data = {k: v for k, v in event_envelope(**overrides).items() if v is not None}
    with pytest.raises(ValidationError):
        events.parse_event(data)


def test_unknown_extra_fields_are_ignored() -> None:
    assert events.parse_event(event_envelope(trace="abc")).user_id == "alice"


def test_diff_names_each_changed_field_with_old_and_new() -> None:
    before = {"title": "a", "tags": ["x"], "status": "pending", "updated_at": "t1", "due_at": None}
    after = {
        "title": "b",
        "tags": ["x"],
        "status": "pending",
        "updated_at": "t2",
        "due_at": "2026-12-01T09:00:00Z",
    }
    assert events.diff(before, after) == {
        "title": {"old": "a", "new": "b"},
        "due_at": {"old": None, "new": "2026-12-01T09:00:00Z"},
    }
    assert events.diff(before, dict(before)) == {}


def test_event_time_keeps_an_explicit_zone() -> None:
    when = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    event = events.new_event(events.TASK_CREATED, user_id="u", task_id=None, occurred_at=when)
    assert event.occurred_at == when and event.occurred_at.tzinfo == UTC


def test_reminder_events_go_to_the_reminders_topic() -> None:
    task_id = uuid.uuid4()
    when = datetime(2026, 12, 1, 8, 45, tzinfo=timezone(timedelta(hours=-5)))
    event = events.reminder_event(
        events.REMINDER_FAILED,
        user_id="alice",
        task_id=task_id,
        remind_at=when,
        reminder={"before": "PT15M"},
        error="SMTP 554",
    )
    assert event.topic == "reminders" and event.task_id == task_id
    assert event.payload == {
        "remind_at": "2026-12-01T13:45:00Z",
        "reminder": {"before": "PT15M"},
        "error": "SMTP 554",
    }
    sent = events.reminder_event(events.REMINDER_SENT, user_id="alice", task_id=task_id, remind_at=when)
    assert "error" not in sent.payload
