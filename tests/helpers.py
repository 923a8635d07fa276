"""Helpers shared by every test tier: dev tokens for test users, event envelopes, a clock."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

# Every tier's test users sign in as the load driver's users do: one place
# that knows the dev secret the stacks accept.
from bench.load import auth as auth
from bench.load import token_for as token_for
from todos.series.models import Basis, Series


def event_envelope(**overrides: object) -> dict[str, object]:
    """A valid version-1.0 event as it travels (todos.events.schema), with overrides."""
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "task.created",
        "event_version": "1.0",
        "occurred_at": "2026-12-01T09:00:00-05:00",
        "user_id": "alice",
        "task_id": str(uuid.uuid4()),
        "payload": {"task": {"title": "x"}},
        **overrides,
    }


class ManualClock:
    """A monotonic clock that moves only when a test sets `now`."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def series_row(now: datetime, **overrides: Any) -> Series:
    """A daily series of alice's, created and due at `now`, as its row (not saved)."""
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "user_id": "alice",
        "rule": "FREQ=DAILY",
        "timezone": "UTC",
        "basis": Basis.schedule,
        "dtstart": now,
        "anchor_at": now,
        "current_task_id": uuid.uuid4(),
        "template": {},
        "created_at": now,
        "updated_at": now,
    }
    return Series(**{**fields, **overrides})
