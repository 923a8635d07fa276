"""Reopening a task on the real database: a one-off back to pending with its
reminders still ahead armed again, and an occurrence of a series current
again, the untouched occurrence created after it withdrawn, the workflow's
next steps following."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlmodel import select

from api.deps import Services
from tests.service.conftest import Clock, FakeJobs, FakeWorkflows
from tests.service.support import event_types, outbox, patch, run_generation
from tests.service.test_series_steps import new_series, nine_tomorrow, occurrences, series_row, started_state
from todos.core.errors import Conflict
from todos.core.users import User
from todos.reminders.models import Reminder, ReminderSpec, ReminderStatus
from todos.reminders.rules import job_name
from todos.series.contract import SeriesState
from todos.tasks.models import TaskCreate, TaskPublic

pytestmark = [pytest.mark.service, pytest.mark.timeout(120)]


def reminder_statuses(services: Services, task_id: uuid.UUID) -> list[ReminderStatus]:
    with services.database.session() as session:
        rows = session.exec(select(Reminder).where(Reminder.task_id == task_id).order_by(Reminder.n))  # type: ignore[arg-type]
        return [row.status for row in rows]


def stepped(
    monkeypatch: pytest.MonkeyPatch, services: Services, state: SeriesState, clock: Clock
) -> SeriesState:
    """One generation woken by its timer; the state it continues with."""
    after, ended = run_generation(monkeypatch, services.steps, state, clock.now)
    assert after is not None, ended
    return after


def completed_and_stepped(
    monkeypatch: pytest.MonkeyPatch,
    services: Services,
    workflows: FakeWorkflows,
    user: User,
    clock: Clock,
    **extra: object,
) -> tuple[TaskPublic, SeriesState]:
    """A daily series whose first occurrence is completed and whose workflow created the second."""
    first = new_series(services, user, nine_tomorrow(clock), **extra)
    assert first.series_id is not None
    services.tasks.complete_task(user, first.id)
    state = stepped(monkeypatch, services, started_state(workflows, first.series_id), clock)
    assert state.occurrence_index == 2
    return first, state


def test_a_completed_one_off_is_pending_again_with_its_reminders_armed_again(
    services: Services, jobs: FakeJobs, user: User, clock: Clock
) -> None:
    due = clock.now + timedelta(days=1)
    reminders = [ReminderSpec(before=timedelta(hours=2)), ReminderSpec(at=clock.now + timedelta(hours=1))]
    task = services.tasks.create_task(
        user, TaskCreate(title="Call the bank", due_at=due, reminders=reminders)
    )
    services.tasks.complete_task(user, task.id)
    services.job_calls.close()
    assert reminder_statuses(services, task.id) == [ReminderStatus.cancelled] * 2
    assert not jobs.armed
    published = len(outbox(services.database))
    clock.advance(hours=3)

    reopened = services.tasks.reopen_task(user, task.id)

    assert reopened.status == "pending" and reopened.completed_at is None
    services.job_calls.close()
    # As when a reminder is set: the one ahead at its time, the one whose time
    # passed meanwhile at once, the task being still ahead.
    assert reminder_statuses(services, task.id) == [ReminderStatus.scheduled] * 2
    assert jobs.armed[job_name(task.id, 0)][0] == due - timedelta(hours=2)
    assert jobs.armed[job_name(task.id, 1)][0] == clock.now
    assert event_types(services.database)[published:] == [
        "task.updated",
        "task.changed",
        "reminder.scheduled",
        "reminder.scheduled",
    ]
    changes = outbox(services.database)[published + 1].body["payload"]["changes"]
    assert changes["status"] == {"old": "completed", "new": "pending"}

    # Twice in a row: the second changes nothing.
    published = len(outbox(services.database))
    assert services.tasks.reopen_task(user, task.id) == services.tasks.get_task(user, task.id)
    assert len(outbox(services.database)) == published


def test_the_latest_occurrence_reopened_withdraws_the_untouched_next_one_and_the_series_steps_back(
    monkeypatch: pytest.MonkeyPatch, services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    first, state = completed_and_stepped(monkeypatch, services, workflows, user, clock)
    assert first.series_id is not None
    second = occurrences(services, first.series_id)[1]
    before = series_row(services, first.series_id)
    published = len(outbox(services.database))

    reopened = services.tasks.reopen_task(user, first.id)

    assert reopened.status == "pending"
    assert [task.id for task in occurrences(services, first.series_id)] == [first.id]
    series = series_row(services, first.series_id)
    assert (series.current_task_id, series.occurrence_index, series.anchor_at) == (first.id, 1, first.due_at)
    assert series.occurrences_created == before.occurrences_created - 1
    rows = outbox(services.database)[published:]
    deleted = next(row.body for row in rows if row.body["event_type"] == "task.deleted")
    assert deleted["task_id"] == str(second.id)
    assert deleted["payload"]["withdrawn_for"] == str(first.id)
    assert workflows.events[-1] == (
        str(first.series_id),
        "task_reopened",
        {"task_id": str(first.id), "occurrence_index": 1},
    )

    # The workflow reads the series again: it waits on the reopened occurrence...
    state = stepped(monkeypatch, services, state, clock)
    assert (state.current_task_id, state.occurrence_index, state.anchor) == (
        str(first.id),
        1,
        first.due_at.isoformat(),
    )
    assert [task.id for task in occurrences(services, first.series_id)] == [first.id]
    # ...and once it is done again, creates the occurrence after it again, due when it was.
    services.tasks.complete_task(user, first.id)
    state = stepped(monkeypatch, services, state, clock)
    again = occurrences(services, first.series_id)
    assert [task.occurrence_index for task in again] == [1, 2]
    assert again[1].due_at == second.due_at and again[1].id != second.id


def test_a_skipped_occurrence_can_be_reopened(
    monkeypatch: pytest.MonkeyPatch, services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    first = new_series(services, user, nine_tomorrow(clock))
    assert first.series_id is not None
    services.series.skip_occurrence(user, first.id)
    stepped(monkeypatch, services, started_state(workflows, first.series_id), clock)

    assert services.tasks.reopen_task(user, first.id).status == "pending"
    assert series_row(services, first.series_id).current_task_id == first.id


def test_a_step_computed_before_the_current_occurrence_was_reopened_creates_nothing(
    monkeypatch: pytest.MonkeyPatch, services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    first = new_series(services, user, nine_tomorrow(clock))
    assert first.series_id is not None
    services.tasks.complete_task(user, first.id)

    def reopen_first(activity: str, _: object) -> None:
        if activity == "create_next_occurrence":
            services.tasks.reopen_task(user, first.id)

    state, _ = run_generation(
        monkeypatch, services.steps, started_state(workflows, first.series_id), clock.now, reopen_first
    )

    assert state is not None and state.occurrence_index == 1
    assert [task.id for task in occurrences(services, first.series_id)] == [first.id]
    assert services.tasks.get_task(user, first.id).status == "pending"


def test_an_edited_next_occurrence_is_not_withdrawn(
    monkeypatch: pytest.MonkeyPatch, services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    first, _ = completed_and_stepped(monkeypatch, services, workflows, user, clock)
    assert first.series_id is not None
    second = occurrences(services, first.series_id)[1]
    clock.advance(seconds=1)
    patch(services, user, second.id, title="Stand-up notes, with the demo")

    with pytest.raises(Conflict, match="has been edited since") as refused:
        services.tasks.reopen_task(user, first.id)

    assert refused.value.field == "task_id"
    assert services.tasks.get_task(user, first.id).status == "completed"
    assert len(occurrences(services, first.series_id)) == 2


def test_only_the_latest_occurrence_can_be_reopened(
    monkeypatch: pytest.MonkeyPatch, services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    first, state = completed_and_stepped(monkeypatch, services, workflows, user, clock)
    assert first.series_id is not None
    services.tasks.complete_task(user, uuid.UUID(state.current_task_id))
    stepped(monkeypatch, services, state, clock)

    with pytest.raises(Conflict, match="only the latest completed or skipped occurrence"):
        services.tasks.reopen_task(user, first.id)


def test_one_step_back_only(
    monkeypatch: pytest.MonkeyPatch, services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    """Occurrence #2 reopened, #1 before it is not: the series keeps one step back."""
    first, state = completed_and_stepped(monkeypatch, services, workflows, user, clock)
    second = uuid.UUID(state.current_task_id)
    services.tasks.complete_task(user, second)
    stepped(monkeypatch, services, state, clock)
    services.tasks.reopen_task(user, second)

    with pytest.raises(Conflict, match="only one step back"):
        services.tasks.reopen_task(user, first.id)


def test_an_occurrence_of_a_stopped_series_is_not_reopened(
    monkeypatch: pytest.MonkeyPatch, services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    first, _ = completed_and_stepped(monkeypatch, services, workflows, user, clock)
    assert first.series_id is not None
    services.series.control_series(user, first.series_id, "stop")

    with pytest.raises(Conflict, match=r"its series has ended \(stopped\)"):
        services.tasks.reopen_task(user, first.id)


def test_a_next_occurrence_that_sent_its_reminder_is_not_withdrawn(
    monkeypatch: pytest.MonkeyPatch, services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    first, state = completed_and_stepped(
        monkeypatch, services, workflows, user, clock, reminders=[ReminderSpec(before=timedelta(hours=1))]
    )
    with services.database.session() as session:
        row = session.exec(select(Reminder).where(Reminder.task_id == uuid.UUID(state.current_task_id))).one()
        row.status = ReminderStatus.sent  # as delivery marks it once the SMTP server took it
        session.add(row)
        session.commit()

    with pytest.raises(Conflict, match="has sent its reminder already"):
        services.tasks.reopen_task(user, first.id)
