"""Helpers shared by every test tier: dev tokens for test users, event envelopes, a clock."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from todos.core.settings import DEV_JWT_SECRET, Settings
from todos.series.models import Basis, Series


def token_for(user: str, **kwargs: object) -> str:
    from api.auth import issue_token

    return issue_token(user, Settings(env="dev", jwt_secret=DEV_JWT_SECRET), **kwargs)  # type: ignore[arg-type]


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user)}"}


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
