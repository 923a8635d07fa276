"""Step shape 2 against the real database: a completion's event carries what
the workflow needs to create the next occurrence in one activity, and the
activity, under the series' lock, refuses (STALE) a step the database does not
bear out, so the generation reads the series and steps from what it says."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from api.deps import Services
from tests.service.conftest import Clock, FakeWorkflows
from tests.service.support import run_generation
from tests.service.test_series_steps import new_series, nine_tomorrow, occurrences, started_state
from todos.core.users import User
from todos.series.contract import (
    CREATE_NEXT_OCCURRENCE,
    LOAD_SERIES_PROGRESS,
    SPECULATIVE_STEPS,
    TASK_COMPLETED,
    SeriesState,
)
from todos.tasks.models import TaskStatus, TaskUpdate

pytestmark = [pytest.mark.service, pytest.mark.timeout(120)]


def speculative(outcome: str) -> float:
    return REGISTRY.get_sample_value("todo_series_speculative_steps_total", {"outcome": outcome}) or 0.0


def completion_event(workflows: FakeWorkflows) -> dict[str, Any]:
    (data,) = [data for _, event, data in workflows.events if event == TASK_COMPLETED][-1:]
    assert data is not None
    return data


def step(
    monkeypatch: pytest.MonkeyPatch, services: Services, state: SeriesState, clock: Clock, woken_by: Any
) -> tuple[SeriesState | None, list[str]]:
    asked: list[str] = []
    handed_on, _ = run_generation(
        monkeypatch,
        services.steps,
        state,
        clock.now,
        before=lambda name, _: asked.append(name),
        woken_by=woken_by,
    )
    return handed_on, asked


def test_each_completion_creates_the_next_occurrence_in_one_activity(
    monkeypatch: pytest.MonkeyPatch, services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    first = new_series(services, user, nine_tomorrow(clock))
    state: SeriesState | None = started_state(workflows, first.series_id)
    assert state is not None and state.step_shape == SPECULATIVE_STEPS
    created_before = speculative("created")
    # Two steps in a row: the second one's state holds the times as the workflow computed them.
    for index in (1, 2):
        current = occurrences(services, first.series_id)[-1]
        services.tasks.complete_task(user, current.id)
        event = completion_event(workflows)
        assert event["task_id"] == str(current.id) and event["occurrence_index"] == index
        assert event["completed_at"] == clock.now.isoformat()
        clock.advance(minutes=1)
        assert state is not None
        state, asked = step(monkeypatch, services, state, clock, event)
        assert asked == [CREATE_NEXT_OCCURRENCE]
    tasks = occurrences(services, first.series_id)
    assert [t.status for t in tasks] == [TaskStatus.completed, TaskStatus.completed, TaskStatus.pending]
    assert state is not None and state.current_task_id == str(tasks[-1].id)
    assert speculative("created") - created_before == 2


def test_a_pause_committed_after_the_completion_makes_the_step_stale_and_the_series_holds(
    monkeypatch: pytest.MonkeyPatch, services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    first = new_series(services, user, nine_tomorrow(clock))
    state = started_state(workflows, first.series_id)
    services.tasks.complete_task(user, first.id)
    event = completion_event(workflows)
    assert first.series_id is not None
    services.series.control_series(user, first.series_id, "pause")
    stale_before = speculative("stale")
    handed_on, asked = step(monkeypatch, services, state, clock, event)
    assert asked == [CREATE_NEXT_OCCURRENCE, LOAD_SERIES_PROGRESS]
    assert len(occurrences(services, first.series_id)) == 1
    assert handed_on is not None and handed_on.paused
    assert speculative("stale") - stale_before == 1


def test_a_due_date_moved_since_the_state_was_written_makes_the_step_stale_and_the_read_wins(
    monkeypatch: pytest.MonkeyPatch, services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    """The completed occurrence's due time moved before the generation that
    heard of it ran: the step must start from the moved time, which only the
    read knows."""
    due = nine_tomorrow(clock)
    first = new_series(services, user, due)
    state = started_state(workflows, first.series_id)
    services.tasks.complete_task(user, first.id)
    event = completion_event(workflows)
    services.tasks.update_task(user, first.id, TaskUpdate(due_at=due + timedelta(hours=2)))
    _, asked = step(monkeypatch, services, state, clock, event)
    assert asked == [CREATE_NEXT_OCCURRENCE, LOAD_SERIES_PROGRESS, CREATE_NEXT_OCCURRENCE]
    assert len(occurrences(services, first.series_id)) == 2
