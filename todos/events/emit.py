"""Writing a change's events: into the outbox, in the change's own
transaction, so the event is published if and only if the change commits."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlmodel import Session

from todos.events import schema
from todos.events.outbox import record_event, record_events
from todos.tasks.models import Task


class ReminderRef(NamedTuple):
    """Which reminder an event is about: its task's owner, task and series, its time and spec."""

    user_id: str
    task_id: uuid.UUID
    series_id: uuid.UUID | None
    remind_at: datetime | None
    reminder: dict[str, Any]


@dataclass(frozen=True)
class Emitter:
    clock: Callable[[], datetime]

    def task(
        self, session: Session, event_type: schema.EventType, task: Task, payload: dict[str, Any]
    ) -> None:
        record_event(session, self._task_event(event_type, task, payload))

    def change(
        self,
        session: Session,
        event_type: schema.EventType,
        task: Task,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        """A change of an existing task: its lifecycle event on task-events and
        the field-level diff on task-updates, in one statement. Nothing if
        nothing changed."""
        changes = schema.diff(before, after)
        if not changes:
            return
        lifecycle = self._task_event(event_type, task, {"task": after, "changes": changes})
        record_events(session, [lifecycle, self._task_event(schema.TASK_CHANGED, task, {"changes": changes})])

    def _task_event(
        self, event_type: schema.EventType, task: Task, payload: dict[str, Any]
    ) -> schema.TaskEvent:
        return schema.new_event(
            event_type,
            user_id=task.user_id,
            task_id=task.id,
            series_id=task.series_id,
            payload=payload,
            occurred_at=self.clock(),
        )

    def reminder(
        self,
        session: Session,
        event_type: schema.ReminderEventType,
        ref: ReminderRef,
        error: str | None = None,
    ) -> None:
        """A reminder's state change on the `reminders` topic, in its transaction."""
        if ref.remind_at is None:
            return
        event = schema.reminder_event(event_type, **ref._asdict(), error=error, occurred_at=self.clock())
        record_event(session, event)
