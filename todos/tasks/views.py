"""A task as the API, the MCP tools and the events show it: its row, its
series' rule, and where each of its reminders stands."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import Session, col, select

from todos.reminders.models import Reminder, ReminderSpec, reminder_public
from todos.series.models import RecurrenceSpec, Series
from todos.tasks.models import Task, TaskPublic


def reminder_rows(
    session: Session, task_ids: list[uuid.UUID], *, refresh: bool = False
) -> dict[uuid.UUID, list[Reminder]]:
    """Each task's reminder rows; `refresh` reloads rows already in the
    session (after a bulk UPDATE, which does not touch them)."""
    by_task: dict[uuid.UUID, list[Reminder]] = {}
    if task_ids:
        statement = select(Reminder).where(col(Reminder.task_id).in_(task_ids)).order_by(col(Reminder.n))
        if refresh:
            statement = statement.execution_options(populate_existing=True)
        for row in session.exec(statement):
            by_task.setdefault(row.task_id, []).append(row)
    return by_task


def task_public(
    session: Session, task: Task, series: Series | None = None, rows: list[Reminder] | None = None
) -> TaskPublic:
    """Reads the series and the reminder rows when the caller has not."""
    if task.series_id is not None and series is None:
        series = session.get(Series, task.series_id)
    if rows is None:
        rows = reminder_rows(session, [task.id]).get(task.id, [])
    spec = (
        RecurrenceSpec(
            rule=series.rule,
            timezone=series.timezone,
            basis=series.basis,
            exdates=series.exdates,
            rdates=series.rdates,
        )
        if series is not None
        else None
    )
    return TaskPublic.model_validate(
        {
            **task.model_dump(exclude={"reminders"}),
            "reminders": [ReminderSpec.model_validate(r) for r in task.reminders],
            "recurrence": spec,
            "reminder_status": [reminder_public(row) for row in rows],
        }
    )


def task_json(public: TaskPublic) -> dict[str, Any]:
    """A task as events carry it. Enum columns read back from the database are
    plain strings (SQLModel does not coerce them), which pydantic would warn
    about; they serialize to the same JSON either way."""
    return public.model_dump(mode="json", warnings=False)


def snapshot(session: Session, task: Task, series: Series | None = None) -> dict[str, Any]:
    return task_json(task_public(session, task, series))
