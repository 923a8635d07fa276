"""What the audit consumer answers for messages it can never record (no
database needed: they are refused before it)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from api.routes.events import _deliveries
from tests.helpers import event_envelope
from todos.core.metrics import AUDIT_EVENTS
from todos.events import audit

pytestmark = pytest.mark.unit


class _NoDatabase:
    """Only junk is delivered in these tests: nothing reaches the database."""

    def session(self) -> Any:
        raise AssertionError("no transaction expected")


NO_DATABASE: Any = _NoDatabase()


def cloud_event(data: object) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "datacontenttype": "application/json",
        "data": data,
    }


def count(label: str) -> float:
    return AUDIT_EVENTS.labels(label)._value.get()


class FakeDeadLetters:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.sent: list[audit.Delivery] = []

    def send(self, delivery: audit.Delivery) -> None:
        if self.fail:
            raise OSError("sidecar down")
        self.sent.append(delivery)


def test_junk_unknown_versions_and_wrong_topics_are_dead_lettered_not_raised() -> None:
    invalid, unsupported = count("invalid"), count("unsupported_version")
    deliveries = [
        audit.Delivery("1", "task-events", "not a cloud event"),
        audit.Delivery("2", "task-events", cloud_event("{not json")),
        audit.Delivery("3", "task-events", cloud_event(event_envelope(event_version="2.0"))),
        audit.Delivery("4", "reminders", cloud_event(event_envelope())),  # a task event on the wrong topic
        audit.Delivery("5", "task-events", cloud_event(None)),
        audit.Delivery("6", "task-events", cloud_event(event_envelope(user_id=None))),
    ]
    dead_letters = FakeDeadLetters()
    assert audit.AuditLog(NO_DATABASE, dead_letters).record(deliveries) == dict.fromkeys("123456", "SUCCESS")
    assert [d.entry_id for d in dead_letters.sent] == list("123456")
    assert count("invalid") == invalid + 5
    assert count("unsupported_version") == unsupported + 1


def test_bulk_and_single_deliveries_are_both_understood() -> None:
    bulk = {
        "entries": [
            {"entryId": "a", "event": cloud_event(event_envelope())},
            {"entryId": "b", "event": None},
        ]
    }
    is_bulk, deliveries = _deliveries("task-events", bulk)
    assert is_bulk and [d.entry_id for d in deliveries] == ["a", "b"]
    single = cloud_event(event_envelope())
    is_bulk, deliveries = _deliveries("task-events", single)
    assert not is_bulk and deliveries[0].entry_id == single["id"] and deliveries[0].cloud_event is single
    is_bulk, deliveries = _deliveries("task-events", None)
    assert not is_bulk and deliveries[0].cloud_event is None


def test_a_message_that_cannot_be_dead_lettered_is_kept_for_redelivery() -> None:
    junk = audit.Delivery("1", "task-events", "junk")
    assert audit.AuditLog(NO_DATABASE, FakeDeadLetters(fail=True)).record([junk]) == {"1": "RETRY"}
