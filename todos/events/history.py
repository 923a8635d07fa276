"""A task's history, read from the audit log: what happened to it, oldest
first, for its owner only."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import Field, SQLModel, col, select

from todos.core.db import Database
from todos.core.errors import NotFound
from todos.core.fields import rfc3339
from todos.events.audit import HISTORY_TOPICS, AuditRecord
from todos.tasks.models import Task


class HistoryEvent(SQLModel):
    event_id: uuid.UUID
    event_type: str = Field(schema_extra={"examples": ["task.updated"]})
    event_version: str = Field(schema_extra={"examples": ["1.0"]})
    occurred_at: str = Field(schema_extra={"examples": ["2026-12-01T09:00:00.123456Z"]})
    recorded_at: str
    series_id: uuid.UUID | None
    payload: dict[str, Any] = Field(
        description="task.* events: `task` (the task after the change; before it, for task.deleted); "
        "task.updated also `changes` {field: {old, new}}."
    )


class TaskHistory(SQLModel):
    task_id: uuid.UUID
    events: list[HistoryEvent] = Field(description="Oldest first.")


class TaskHistories:
    def __init__(self, database: Database) -> None:
        self.database = database

    def history(self, user_id: str, task_id: uuid.UUID) -> TaskHistory:
        """What happened to a task, oldest first. Owner only: another user's
        task (or one that never existed) is a 404 either way."""
        with self.database.session() as session:
            records = list(
                session.exec(
                    select(AuditRecord)
                    .where(
                        AuditRecord.task_id == task_id,
                        AuditRecord.user_id == user_id,
                        col(AuditRecord.topic).in_(HISTORY_TOPICS),
                    )
                    .order_by(col(AuditRecord.occurred_at), col(AuditRecord.id))
                )
            )
            if not records:
                owned = session.exec(
                    select(Task.id).where(Task.id == task_id, Task.user_id == user_id)
                ).first()
                if owned is None:
                    raise NotFound(f"No task {task_id} exists for this user.", field="task_id")
        return TaskHistory(
            task_id=task_id,
            events=[
                HistoryEvent(
                    event_id=r.event_id,
                    event_type=r.event_type,
                    event_version=r.event_version,
                    occurred_at=rfc3339(r.occurred_at) or "",
                    recorded_at=rfc3339(r.recorded_at) or "",
                    series_id=r.series_id,
                    payload=r.payload,
                )
                for r in records
            ],
        )
