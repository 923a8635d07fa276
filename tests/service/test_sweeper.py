"""The sweeper against the real database: a live series whose workflow instance
failed, was terminated or purged is started again (once); a series whose
current occurrence was deleted while its wake-up was lost is nudged; and rows
it cannot repair do not keep the others waiting."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.service.conftest import Clock, FakeWorkflows
from todos.models import RecurrenceSpec, TaskCreate
from todos.orchestration import TASK_COMPLETED, instance_id
from todos.service import TaskService, User

pytestmark = [pytest.mark.service, pytest.mark.timeout(120)]


def new_series(service: TaskService, user: User, clock: Clock, title: str = "Water the plants") -> Any:
    return service.create_task(
        user,
        TaskCreate(
            title=title,
            due_at=clock.now + timedelta(days=1),
            recurrence=RecurrenceSpec(rule="daily", timezone="Europe/Paris"),
        ),
    )


@pytest.mark.parametrize("status", ["FAILED", "TERMINATED", None], ids=["failed", "terminated", "purged"])
def test_a_live_series_whose_workflow_ended_is_started_again_once(
    service: TaskService, workflows: FakeWorkflows, user: User, clock: Clock, status: str | None
) -> None:
    task = new_series(service, user, clock)
    other = new_series(service, user, clock, title="Still running")
    clock.advance(seconds=30)
    service.sweep()  # records both as started
    workflows.status[instance_id(task.series_id)] = status
    workflows.started.clear()

    clock.advance(seconds=30)
    repaired = service.sweep()
    assert repaired["restarted"] == 1
    assert workflows.starts_of(task.series_id) == 1 and workflows.starts_of(other.series_id) == 0
    (state,) = workflows.started
    assert state.current_task_id == str(task.id) and state.occurrence_index == 1

    clock.advance(seconds=30)
    assert service.sweep()["restarted"] == 0, "a running instance was started again"


def test_an_ended_series_is_not_restarted(
    service: TaskService, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    task = new_series(service, user, clock)
    clock.advance(seconds=30)
    service.sweep()
    service.control_series(user, task.series_id, "stop")
    workflows.status[instance_id(task.series_id)] = "COMPLETED"
    clock.advance(seconds=30)
    assert service.sweep()["restarted"] == 0


def test_a_deleted_current_occurrence_whose_wake_up_was_lost_is_nudged(
    service: TaskService, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    task = new_series(service, user, clock)
    clock.advance(seconds=30)
    service.sweep()
    workflows.down = True  # the delete's wake-up is lost
    service.delete_task(user, task.id)
    workflows.down = False
    clock.advance(seconds=30)
    repaired = service.sweep()
    assert repaired["nudged"] == 1
    assert (str(task.series_id), TASK_COMPLETED, None) in workflows.events


def test_series_the_sweeper_cannot_repair_do_not_keep_the_others_waiting(
    service: TaskService, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    """Three stalled series, one looked at per sweep: each is looked at within three sweeps,
    though none of them moves on."""
    tasks = [new_series(service, user, clock, title=f"Stalled {n}") for n in range(3)]
    for task in tasks:
        service.complete_task(user, task.id)
    workflows.events.clear()
    looked_at: set[str] = set()
    for _ in range(3):
        clock.advance(seconds=30)
        service.sweep(batch=1)
        looked_at |= {series_id for series_id, event, _ in workflows.events if event == TASK_COMPLETED}
    assert looked_at == {str(task.series_id) for task in tasks}
