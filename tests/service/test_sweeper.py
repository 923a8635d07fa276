"""The sweeper against the real database: a live series whose workflow instance
failed, was terminated or purged is started again (once); a running one that
lags the database past the grace is replaced; a series whose
current occurrence was deleted while its wake-up was lost is nudged; and rows
it cannot repair do not keep the others waiting."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from api.deps import Services
from tests.service.conftest import Clock, FakeWorkflows
from tests.service.support import run_generation
from todos.core.users import User
from todos.series.contract import TASK_COMPLETED, SeriesState, instance_id
from todos.series.models import RecurrenceSpec
from todos.tasks.models import TaskCreate

pytestmark = [pytest.mark.service, pytest.mark.timeout(120)]


def new_series(services: Services, user: User, clock: Clock, title: str = "Water the plants") -> Any:
    return services.tasks.create_task(
        user,
        TaskCreate(
            title=title,
            due_at=clock.now + timedelta(days=1),
            recurrence=RecurrenceSpec(rule="daily", timezone="Europe/Paris"),
        ),
    )


@pytest.mark.parametrize("status", ["FAILED", "TERMINATED", None], ids=["failed", "terminated", "purged"])
def test_a_live_series_whose_workflow_ended_is_started_again_once(
    services: Services, workflows: FakeWorkflows, user: User, clock: Clock, status: str | None
) -> None:
    task = new_series(services, user, clock)
    other = new_series(services, user, clock, title="Still running")
    clock.advance(seconds=30)
    services.sweeper.sweep()  # records both as started
    workflows.status[instance_id(task.series_id)] = status
    workflows.started.clear()

    clock.advance(seconds=30)
    repaired = services.sweeper.sweep()
    assert repaired["restarted"] == 1
    assert workflows.starts_of(task.series_id) == 1 and workflows.starts_of(other.series_id) == 0
    (state,) = workflows.started
    assert state.current_task_id == str(task.id) and state.occurrence_index == 1

    clock.advance(seconds=30)
    assert services.sweeper.sweep()["restarted"] == 0, "a running instance was started again"


def test_an_ended_series_is_not_restarted(
    services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    task = new_series(services, user, clock)
    clock.advance(seconds=30)
    services.sweeper.sweep()
    services.series.control_series(user, task.series_id, "stop")
    workflows.status[instance_id(task.series_id)] = "COMPLETED"
    clock.advance(seconds=30)
    assert services.sweeper.sweep()["restarted"] == 0


def test_a_deleted_current_occurrence_whose_wake_up_was_lost_is_nudged(
    services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    task = new_series(services, user, clock)
    clock.advance(seconds=30)
    services.sweeper.sweep()
    workflows.down = True  # the delete's wake-up is lost
    services.tasks.delete_task(user, task.id)
    workflows.down = False
    clock.advance(seconds=30)
    repaired = services.sweeper.sweep()
    assert repaired["nudged"] == 1
    assert (str(task.series_id), TASK_COMPLETED, None) in workflows.events


def test_series_the_sweeper_cannot_repair_do_not_keep_the_others_waiting(
    services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    """Three stalled series, one looked at per sweep: each is looked at within three sweeps,
    though none of them moves on."""
    tasks = [new_series(services, user, clock, title=f"Stalled {n}") for n in range(3)]
    for task in tasks:
        services.tasks.complete_task(user, task.id)
    workflows.events.clear()
    looked_at: set[str] = set()
    for _ in range(3):
        clock.advance(seconds=30)
        services.sweeper.sweep(batch=1)
        looked_at |= {series_id for series_id, event, _ in workflows.events if event == TASK_COMPLETED}
    assert looked_at == {str(task.series_id) for task in tasks}


def stepped_without_telling_the_workflow(
    monkeypatch: pytest.MonkeyPatch, services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> tuple[Any, SeriesState]:
    """A series whose first occurrence was completed and whose step committed
    the second, while the instance never heard the activity's result: it
    still reports occurrence 1 (what a lost scheduler job left behind)."""
    task = new_series(services, user, clock)
    clock.advance(seconds=30)
    services.sweeper.sweep()  # records it as started
    services.tasks.complete_task(user, task.id)
    started = next(state for state in workflows.started if state.series_id == str(task.series_id))
    handed_on, _ = run_generation(monkeypatch, services.steps, started, clock.now, woken_by={})
    assert handed_on is not None and handed_on.occurrence_index == 2
    workflows.started.clear()
    return task, handed_on


def test_a_running_workflow_behind_the_database_is_replaced_once_past_the_grace(
    monkeypatch: pytest.MonkeyPatch, services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    task, handed_on = stepped_without_telling_the_workflow(monkeypatch, services, workflows, user, clock)
    in_step = new_series(services, user, clock, title="In step")
    grace = services.settings.sweep_lag_grace_seconds

    clock.advance(seconds=grace / 2)
    assert services.sweeper.sweep()["replaced"] == 0, (
        "replaced before the grace: its result may be on its way"
    )
    assert workflows.terminated == []

    clock.advance(seconds=grace)
    repaired = services.sweeper.sweep()
    assert repaired["replaced"] == 1 and repaired["restarted"] == 0
    assert workflows.terminated == [instance_id(task.series_id)]
    (state,) = (state for state in workflows.started if state.series_id == str(task.series_id))
    assert (state.occurrence_index, state.current_task_id) == (2, handed_on.current_task_id)
    assert workflows.starts_of(in_step.series_id) == 1, "the series in step was started again"

    clock.advance(seconds=grace * 2)
    assert services.sweeper.sweep()["replaced"] == 0, "an instance back in step was replaced again"


def test_a_completed_occurrence_whose_workflow_lags_is_replaced_not_nudged(
    monkeypatch: pytest.MonkeyPatch, services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    """A nudge cannot help: the instance still waits for the result of the
    step before, so the completion of the occurrence after it stays unread."""
    _, handed_on = stepped_without_telling_the_workflow(monkeypatch, services, workflows, user, clock)
    services.tasks.complete_task(user, uuid.UUID(handed_on.current_task_id))
    workflows.events.clear()

    clock.advance(seconds=services.settings.sweep_lag_grace_seconds * 2)
    repaired = services.sweeper.sweep()
    assert repaired["replaced"] == 1 and repaired["nudged"] == 0
    assert workflows.events == []
    (state,) = workflows.started
    assert state.occurrence_index == 2
