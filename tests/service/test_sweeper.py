"""The sweeper against the real database: a live series whose workflow instance
failed, was terminated or purged is started again (once); a series whose
current occurrence was deleted while its wake-up was lost is nudged; and rows
it cannot repair do not keep the others waiting."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from api.deps import Services
from tests.service.conftest import Clock, FakeWorkflows
from todos.core.users import User
from todos.series.contract import TASK_COMPLETED, instance_id
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
