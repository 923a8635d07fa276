"""Steering one date of a series ahead of time on the real database: what is
coming, a skip or a move of a date ahead (EXDATE, RDATE), and the workflow's
steps honouring them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from api.deps import Services
from tests.service.conftest import Clock, FakeWorkflows
from tests.service.support import event_types, outbox, run_generation
from tests.service.test_series_steps import new_series, nine_tomorrow, started_state
from todos.core.errors import InvalidInput
from todos.core.fields import rfc3339
from todos.core.users import User
from todos.tasks.models import Task

pytestmark = [pytest.mark.service, pytest.mark.timeout(120)]


def dues(services: Services, series_id: uuid.UUID) -> list[datetime]:
    with services.database.session() as session:
        rows = session.exec(select(Task).where(Task.series_id == series_id).order_by(Task.occurrence_index))  # type: ignore[arg-type]
        return [row.due_at.astimezone(UTC) for row in rows if row.due_at is not None]


def coming(
    services: Services, user: User, series_id: uuid.UUID, limit: int = 5
) -> list[tuple[str, str, int]]:
    listed = services.series.list_occurrences(user, series_id, limit)
    return [(o.due_at, o.status, o.index) for o in listed.occurrences]


def test_a_date_skipped_and_one_moved_ahead_are_what_the_list_shows_and_the_workflow_creates(
    monkeypatch: pytest.MonkeyPatch, services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    first = new_series(services, user, nine_tomorrow(clock))
    series_id = first.series_id
    assert first.due_at is not None and series_id is not None
    day = [first.due_at + timedelta(days=n) for n in range(5)]
    moved_to = day[2] + timedelta(hours=5)
    outbox_before = len(outbox(services.database))

    services.series.skip_date(user, series_id, day[1])
    shown = services.series.move_date(user, series_id, day[2], moved_to)

    assert shown.exdates == [rfc3339(day[1]), rfc3339(day[2])] and shown.rdates == [rfc3339(moved_to)]
    assert coming(services, user, series_id, 4) == [
        (rfc3339(day[0]), "current", 1),
        (rfc3339(moved_to), "moved", 2),
        (rfc3339(day[3]), "planned", 3),
        (rfc3339(day[4]), "planned", 4),
    ]
    assert services.series.list_occurrences(user, series_id, 4).skipped == [rfc3339(day[1]), rfc3339(day[2])]
    # Each change is recorded on the current occurrence, its recurrence changed.
    assert event_types(services.database)[outbox_before:] == ["task.updated", "task.changed"] * 2
    changed = [series for series, event, _ in workflows.events if event == "series_changed"]
    assert changed == [str(series_id)] * 2

    # The workflow's steps create exactly what the list showed.
    services.tasks.complete_task(user, first.id)
    state, _ = run_generation(monkeypatch, services.steps, started_state(workflows, series_id), clock.now)
    assert state is not None
    services.tasks.complete_task(user, uuid.UUID(state.current_task_id))
    clock.now = moved_to
    state, _ = run_generation(monkeypatch, services.steps, state, clock.now)
    assert dues(services, series_id) == [day[0], moved_to, day[3]]


def test_skipping_a_date_twice_changes_nothing_the_second_time(
    services: Services, user: User, clock: Clock
) -> None:
    first = new_series(services, user, nine_tomorrow(clock))
    assert first.due_at is not None and first.series_id is not None
    ahead = first.due_at + timedelta(days=3)
    services.series.skip_date(user, first.series_id, ahead)
    events = len(outbox(services.database))

    again = services.series.skip_date(user, first.series_id, ahead)

    assert again.exdates == [rfc3339(ahead)]
    assert len(outbox(services.database)) == events


@pytest.mark.parametrize(
    ("operation", "field"),
    [
        (lambda s, u, i, due: s.series.skip_date(u, i, due + timedelta(hours=1)), "due_at"),
        (
            lambda s, u, i, due: s.series.move_date(
                u, i, due + timedelta(minutes=30), due + timedelta(days=9)
            ),
            "due_at",
        ),
        (
            lambda s, u, i, due: s.series.move_date(u, i, due + timedelta(days=2), due - timedelta(hours=1)),
            "to",
        ),
        (
            lambda s, u, i, due: s.series.move_date(u, i, due + timedelta(days=2), due + timedelta(days=3)),
            "to",
        ),
    ],
    ids=["skip-not-an-occurrence", "move-not-an-occurrence", "move-before-the-current", "move-onto-another"],
)
def test_dates_that_are_not_the_series_are_refused_naming_the_field(
    services: Services, user: User, clock: Clock, operation: Any, field: str
) -> None:
    first = new_series(services, user, nine_tomorrow(clock))
    assert first.due_at is not None

    with pytest.raises(InvalidInput) as refused:
        operation(services, user, first.series_id, first.due_at)

    assert refused.value.field == field and str(refused.value).startswith(f"{field}: ")
