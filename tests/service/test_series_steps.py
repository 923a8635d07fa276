"""A series' steps against the real database: the workflow's generation and its
activities (tests/service/support.py) racing a user's stop, rule change, skip
and edits, as they can between two of the workflow's activities."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from api.deps import Services
from tests.service.conftest import Clock, FakeJobs, FakeWorkflows
from tests.service.support import run_generation
from todos.core.errors import Conflict
from todos.core.users import User
from todos.reminders.models import ReminderSpec
from todos.series.contract import CREATE_NEXT_OCCURRENCE, SeriesState
from todos.series.models import RecurrenceSpec, Series
from todos.tasks.models import Task, TaskCreate, TaskStatus, TaskUpdate

pytestmark = [pytest.mark.service, pytest.mark.timeout(120)]

NEW_YORK = ZoneInfo("America/New_York")


def nine_tomorrow(clock: Clock) -> datetime:
    local = clock.now.astimezone(NEW_YORK) + timedelta(days=1)
    return local.replace(hour=9, minute=0, second=0, microsecond=0)


def new_series(services: Services, user: User, due: datetime, rule: str = "daily", **extra: Any) -> Any:
    return services.tasks.create_task(
        user,
        TaskCreate(
            title="Stand-up notes",
            due_at=due,
            recurrence=RecurrenceSpec(rule=rule, timezone="America/New_York"),
            **extra,
        ),
    )


def started_state(workflows: FakeWorkflows, series_id: uuid.UUID) -> SeriesState:
    return next(state for state in reversed(workflows.started) if state.series_id == str(series_id))


def occurrences(services: Services, series_id: uuid.UUID) -> list[Task]:
    with services.database.session() as session:
        return list(
            session.exec(select(Task).where(Task.series_id == series_id).order_by(Task.occurrence_index))  # type: ignore[arg-type]
        )


def series_row(services: Services, series_id: uuid.UUID) -> Series:
    with services.database.session() as session:
        row = session.get(Series, series_id)
        assert row is not None
        return row


def test_a_stop_committed_while_the_next_occurrence_is_computed_creates_nothing(
    monkeypatch: pytest.MonkeyPatch,
    services: Services,
    workflows: FakeWorkflows,
    jobs: FakeJobs,
    user: User,
    clock: Clock,
) -> None:
    first = new_series(
        services, user, nine_tomorrow(clock), reminders=[ReminderSpec(before=timedelta(minutes=10))]
    )
    services.tasks.complete_task(user, first.id)
    services.job_calls.close()
    jobs.armed.clear()

    def stop_first(name: str, arg: Any) -> None:
        if name == CREATE_NEXT_OCCURRENCE:
            services.series.control_series(user, first.series_id, "stop")

    handed_on, ended = run_generation(
        monkeypatch, services.steps, started_state(workflows, first.series_id), clock.now, before=stop_first
    )
    assert handed_on is None and ended is not None and ended["ended"] == "stopped"
    assert [task.occurrence_index for task in occurrences(services, first.series_id)] == [1]
    assert series_row(services, first.series_id).current_task_id == first.id
    services.job_calls.close()
    assert jobs.armed == {}, "a reminder of an occurrence of a stopped series was armed"


def test_a_step_computed_from_a_rule_since_replaced_is_refused_and_the_new_rule_applies(
    monkeypatch: pytest.MonkeyPatch, services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    first = new_series(services, user, nine_tomorrow(clock))
    services.tasks.complete_task(user, first.id)
    state = started_state(workflows, first.series_id)

    def change_rule(name: str, arg: Any) -> None:
        if name == CREATE_NEXT_OCCURRENCE:
            weekly = RecurrenceSpec(rule="FREQ=WEEKLY;COUNT=3", timezone="America/New_York")
            services.tasks.update_task(user, first.id, TaskUpdate(recurrence=weekly))

    handed_on, ended = run_generation(monkeypatch, services.steps, state, clock.now, before=change_rule)
    assert ended is None and handed_on is not None
    assert handed_on.occurrence_index == 1, "the refused step moved the workflow on"
    series = series_row(services, first.series_id)
    assert series.rule == "FREQ=WEEKLY;COUNT=3", "the old rule's step overwrote the new rule"
    assert series.occurrence_index == 1 and series.rule_index == 1
    assert [task.occurrence_index for task in occurrences(services, first.series_id)] == [1]

    # The next generation reads the new rule: #2 is a week after #1.
    handed_on, _ = run_generation(monkeypatch, services.steps, handed_on, clock.now)
    assert handed_on is not None and handed_on.rule == "FREQ=WEEKLY;COUNT=3"
    second = occurrences(services, first.series_id)[1]
    assert second.due_at == first.due_at + timedelta(weeks=1)


def test_a_retried_step_that_committed_before_a_stop_returns_what_it_created(
    services: Services, monkeypatch: pytest.MonkeyPatch, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    first = new_series(services, user, nine_tomorrow(clock))
    services.tasks.complete_task(user, first.id)
    steps: list[Any] = []
    run_generation(
        monkeypatch,
        services.steps,
        started_state(workflows, first.series_id),
        clock.now,
        before=lambda name, arg: steps.append(arg) if name == CREATE_NEXT_OCCURRENCE else None,
    )
    (step,) = steps
    services.series.control_series(user, first.series_id, "stop")
    again = services.steps.create_next_occurrence(step)
    assert again.refused is None and again.occurrence_index == 2


def test_a_rule_change_through_an_older_occurrence_is_refused_naming_the_current_one(
    monkeypatch: pytest.MonkeyPatch, services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    first = new_series(services, user, nine_tomorrow(clock), rule="FREQ=WEEKLY;COUNT=5")
    services.tasks.complete_task(user, first.id)
    run_generation(monkeypatch, services.steps, started_state(workflows, first.series_id), clock.now)
    second = occurrences(services, first.series_id)[1]
    clock.advance(days=90)
    change = TaskUpdate(recurrence=RecurrenceSpec(rule="FREQ=WEEKLY;COUNT=5;BYDAY=MO,TH"))
    with pytest.raises(Conflict) as refused:
        services.tasks.update_task(user, first.id, change)
    assert refused.value.field == "recurrence"
    assert str(second.id) in refused.value.detail and "#2" in refused.value.detail
    series = series_row(services, first.series_id)
    assert series.rule == "FREQ=WEEKLY;COUNT=5" and series.dtstart == first.due_at
    # Through the current occurrence it applies, from there.
    services.tasks.update_task(user, second.id, change)
    assert series_row(services, first.series_id).rule.endswith("BYDAY=MO,TH")


def test_skipping_an_occurrence_that_is_no_longer_current_is_refused_naming_the_current_one(
    monkeypatch: pytest.MonkeyPatch, services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    """A chatbot retries skip_occurrence(#1) after the workflow created #2: #2 must stay."""
    first = new_series(services, user, nine_tomorrow(clock))
    services.series.skip_occurrence(user, first.id)
    run_generation(monkeypatch, services.steps, started_state(workflows, first.series_id), clock.now)
    second = occurrences(services, first.series_id)[1]
    with pytest.raises(Conflict) as refused:
        services.series.skip_occurrence(user, first.id)
    assert refused.value.field == "task_id" and str(second.id) in refused.value.detail
    assert occurrences(services, first.series_id)[1].status == TaskStatus.pending
    services.series.skip_occurrence(user, second.id)
    assert occurrences(services, first.series_id)[1].status == TaskStatus.skipped


def test_the_first_occurrence_moved_before_the_start_and_completed_is_followed_by_the_next_day(
    monkeypatch: pytest.MonkeyPatch, services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    """Daily 09:00, #1 moved to 08:30 and done: the workflow used to FAIL on it; now #2 is the
    next day's 09:00 and the series shows the moved time while #1 is pending."""
    nine = nine_tomorrow(clock)
    first = new_series(services, user, nine)
    services.tasks.update_task(user, first.id, TaskUpdate(due_at=nine - timedelta(minutes=30)))
    assert services.series.get_series(user, first.series_id).next_due_at == (
        (nine - timedelta(minutes=30)).astimezone(ZoneInfo("UTC")).isoformat().replace("+00:00", "Z")
    )
    clock.now = nine - timedelta(minutes=25)
    services.tasks.complete_task(user, first.id)
    handed_on, ended = run_generation(
        monkeypatch, services.steps, started_state(workflows, first.series_id), clock.now
    )
    assert ended is None and handed_on is not None and handed_on.last_error is None
    second = occurrences(services, first.series_id)[1]
    assert second.due_at == nine + timedelta(days=1)
    assert handed_on.rule_index == 2
