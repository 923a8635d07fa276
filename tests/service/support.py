"""What the service tests share.

`run_generation`: one generation of the real `recurring_task_workflow` run
against the real service layer, without daprd: a small context that wakes the
generation at once, runs each activity the workflow calls on the service (as
the worker would, between the workflow's turns) and records how the
generation ended.

`outbox`: the events a test's changes wrote, in the order the relay publishes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from api.deps import Services
from tests.service.conftest import Clock
from todos.core.db import Database
from todos.core.fields import rfc3339
from todos.core.users import User
from todos.events.outbox import OutboxRow
from todos.series.contract import (
    CREATE_NEXT_OCCURRENCE,
    EVENTS,
    FINISH_SERIES,
    LOAD_SERIES_PROGRESS,
    SCHEDULE_TASK_REMINDERS,
    TASK_COMPLETED,
    ArmedReminders,
    SeriesState,
)
from todos.series.steps import SeriesSteps
from todos.tasks.models import TaskCreate, TaskPublic, TaskUpdate
from workflows import recurring

# Called before each activity runs: (activity name, its input); a test uses it
# to commit a change in the window between two of the workflow's steps.
BeforeActivity = Callable[[str, Any], None]


class _Context:
    def __init__(self, now: datetime) -> None:
        self.current_utc_datetime = now.replace(tzinfo=None)  # naive, like the SDK's clock
        self.is_replaying = False
        self.custom_status: str | None = None
        self.continued_with: SeriesState | None = None
        self.instance_id = "series-under-test"

    def set_custom_status(self, status: str) -> None:
        self.custom_status = status

    def create_timer(self, fire_at: datetime) -> str:
        return "timer"

    def call_activity(self, name: str, *, input: Any, retry_policy: Any) -> tuple[str, Any]:
        return (name, input)

    def continue_as_new(self, new_input: SeriesState, *, save_events: bool = False) -> None:
        self.continued_with = new_input


class _Wait:
    """An event wait as the workflow reads it once it won."""

    def __init__(self, data: dict[str, Any] | None) -> None:
        self.data = data

    def get_result(self) -> dict[str, Any] | None:
        return self.data


def _activity(steps: SeriesSteps, name: str, arg: Any) -> Any:
    if name == LOAD_SERIES_PROGRESS:
        return steps.load_series_progress(arg)
    if name == CREATE_NEXT_OCCURRENCE:
        return steps.create_next_occurrence(arg)
    if name == FINISH_SERIES:
        return steps.finish_series(arg)
    assert name == SCHEDULE_TASK_REMINDERS, name
    return ArmedReminders(task_id=arg.task_id, armed=steps.schedule_task_reminders(uuid.UUID(arg.task_id)))


def run_generation(
    monkeypatch: pytest.MonkeyPatch,
    steps: SeriesSteps,
    state: SeriesState,
    now: datetime,
    before: BeforeActivity | None = None,
    woken_by: dict[str, Any] | None = None,
) -> tuple[SeriesState | None, dict[str, Any] | None]:
    """(the next generation's input, or the workflow's output if it ended).
    `woken_by`: the data of the task_completed event that woke the generation
    (what the fake workflow gateway recorded), else the timer woke it."""
    waits = [_Wait(woken_by if name == TASK_COMPLETED else None) for name in EVENTS]
    completion = waits[EVENTS.index(TASK_COMPLETED)]
    # Woken by the task_completed event when the test raised one, else by the timer.
    monkeypatch.setattr(recurring, "when_any", lambda tasks: completion if woken_by is not None else "timer")
    monkeypatch.setattr(recurring, "event_waits", lambda ctx, names, sentinel_free: waits)
    monkeypatch.setattr(recurring, "withdraw", lambda ctx, names, waits: None)
    ctx = _Context(now)
    generation: Generator[Any, Any, Any] = recurring.recurring_task_workflow(ctx, state)  # type: ignore[arg-type]
    sent: Any = None
    try:
        while True:
            asked = generation.send(sent)
            # when_any's answer is the wait that won, as the SDK's is.
            sent = asked if isinstance(asked, _Wait) else None
            if isinstance(asked, tuple):
                name, arg = asked
                if before is not None:
                    before(name, arg)
                sent = _activity(steps, name, arg)
                if name != FINISH_SERIES:
                    sent = sent.model_dump()  # as the SDK hands results back: JSON
    except StopIteration as done:
        return ctx.continued_with, done.value


def outbox(database: Database) -> list[OutboxRow]:
    """Every outbox row, in publish order (each test starts from an empty table)."""
    with database.session() as session:
        return list(session.exec(select(OutboxRow).order_by(col(OutboxRow.id))))


def event_types(database: Database) -> list[str]:
    return [row.body["event_type"] for row in outbox(database)]


# ---- the REST contract's requests, as the service takes them -------------------------


def create(services: Services, user: User, **body: Any) -> TaskPublic:
    """POST /v1/tasks with this JSON body (a title unless it gives one)."""
    return services.tasks.create_task(user, TaskCreate.model_validate({"title": "Call the bank", **body}))


def patch(services: Services, user: User, task_id: uuid.UUID, **body: Any) -> TaskPublic:
    """PATCH /v1/tasks/{id}: only the keys given are in the body."""
    return services.tasks.update_task(user, task_id, TaskUpdate.model_validate(body))


def later(clock: Clock, **delta: float) -> str:
    """An RFC 3339 time this far after the test's clock."""
    return rfc3339(clock.now + timedelta(**delta)) or ""
