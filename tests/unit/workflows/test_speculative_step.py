"""Step shape 2: a completion of the current occurrence creates the next one
in one activity, without reading the series first; the database has the last
word (STALE), and generations of shape 1 step as their histories say. Run
through the SDK's own orchestration executor with the histories daprd would
send, so a replay that takes another path fails here as NonDeterminismError."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Any

import pytest
from dapr.ext.workflow._durabletask.internal import helpers, protos

from tests.unit.workflows.states import DUE, progress, state
from tests.unit.workflows.test_event_handover import INSTANCE, STARTED, WORKFLOW_NAME, recorded, run
from todos.series.contract import (
    CREATE_NEXT_OCCURRENCE,
    LOAD_SERIES_PROGRESS,
    SPECULATIVE_STEPS,
    STALE,
    TASK_COMPLETED,
    SeriesProgress,
    SeriesState,
)
from workflows.recurring import assumed_progress

pytestmark = pytest.mark.unit

COMPLETED_AT = "2026-12-01T14:30:00+00:00"
COMPLETION = {"task_id": "t1", "occurrence_index": 1, "completed_at": COMPLETED_AT}
NEXT_DUE = "2026-12-02T09:00:00-05:00"


class Series:
    """One generation, turn by turn: each turn replays the ones before it."""

    def __init__(self, initial: SeriesState) -> None:
        self.history = [
            helpers.new_workflow_started_event(STARTED),
            helpers.new_execution_started_event(
                WORKFLOW_NAME, INSTANCE, json.dumps(dataclasses.asdict(initial))
            ),
        ]
        self.turns = 0
        self.results = self.turn([])

    def turn(self, events: list[protos.HistoryEvent]) -> Any:
        self.turns += 1
        new = [helpers.new_workflow_started_event(STARTED + timedelta(seconds=self.turns)), *events]
        results = run(self.history, new)
        self.history += [*new, *recorded(results)]
        self.results = results
        return results

    def woken(self, data: dict[str, Any] | None) -> Any:
        return self.turn([helpers.new_event_raised_event(TASK_COMPLETED, json.dumps(data))])

    def scheduled(self) -> protos.ScheduleTaskAction:
        (action,) = [a for a in self.results.actions if a.HasField("scheduleTask")]
        return action

    def answer(self, value: dict[str, Any]) -> Any:
        return self.turn([helpers.new_task_completed_event(self.scheduled().id, json.dumps(value))])

    def continued_with(self) -> SeriesState:
        (action,) = self.results.actions
        done = action.completeWorkflow
        assert done.workflowStatus == protos.ORCHESTRATION_STATUS_CONTINUED_AS_NEW
        return SeriesState.model_validate(json.loads(done.result.value))


def created(**changes: Any) -> dict[str, Any]:
    return {"task_id": "t2", "occurrence_index": 2, "due_at": NEXT_DUE, "reminders_to_arm": 0, **changes}


def test_a_completion_of_the_current_occurrence_creates_the_next_without_reading_first() -> None:
    series = Series(state(step_shape=SPECULATIVE_STEPS))
    series.woken(COMPLETION)
    action = series.scheduled()
    assert action.scheduleTask.name == CREATE_NEXT_OCCURRENCE
    sent = json.loads(action.scheduleTask.input.value)
    assert (sent["occurrence_index"], sent["due_at"]) == (2, "2026-12-02T14:00:00+00:00")
    assumed = SeriesProgress.model_validate(sent["assumed"])
    assert (assumed.current_task_status, assumed.completed_at, assumed.status) == (
        "completed",
        COMPLETED_AT,
        "active",
    )
    series.answer(created())
    handed_on = series.continued_with()
    assert (handed_on.current_task_id, handed_on.occurrence_index, handed_on.anchor) == ("t2", 2, NEXT_DUE)
    assert handed_on.step_shape == SPECULATIVE_STEPS


def test_a_stale_guess_reads_the_series_and_steps_from_what_it_says() -> None:
    """The database says otherwise (here: the rule moved on to a weekly one):
    the generation reads the progress and computes the step again."""
    series = Series(state(step_shape=SPECULATIVE_STEPS))
    series.woken(COMPLETION)
    series.answer(created(task_id="", refused=STALE))
    assert series.scheduled().scheduleTask.name == LOAD_SERIES_PROGRESS
    series.answer(
        progress(rule="FREQ=WEEKLY", current_task_status="completed", completed_at=COMPLETED_AT, step_shape=2)
    )
    action = series.scheduled()
    assert action.scheduleTask.name == CREATE_NEXT_OCCURRENCE
    sent = json.loads(action.scheduleTask.input.value)
    assert sent["assumed"] is None and sent["rule"] == "FREQ=WEEKLY"
    assert sent["due_at"] == "2026-12-08T14:00:00+00:00"
    series.answer(created(due_at="2026-12-08T09:00:00-05:00"))
    assert series.continued_with().rule == "FREQ=WEEKLY"


@pytest.mark.parametrize(
    ("shape", "data"),
    [
        (1, COMPLETION),  # a generation begun before shape 2, or a deploy set to 1
        (SPECULATIVE_STEPS, {**COMPLETION, "completed_at": None}),  # raised by a deploy before the field
        (SPECULATIVE_STEPS, {**COMPLETION, "task_id": "t0"}),  # a late event of an earlier occurrence
        (SPECULATIVE_STEPS, {**COMPLETION, "occurrence_index": 0}),
    ],
    ids=["shape 1", "no completion time", "another task", "another occurrence"],
)
def test_otherwise_a_generation_reads_the_series_first(shape: int, data: dict[str, Any]) -> None:
    series = Series(state(step_shape=shape))
    series.woken(data)
    assert series.scheduled().scheduleTask.name == LOAD_SERIES_PROGRESS


def test_a_generation_of_shape_1_takes_the_shape_the_deploy_reports_for_the_next() -> None:
    series = Series(state())
    series.woken(COMPLETION)
    series.answer(progress(step_shape=SPECULATIVE_STEPS))  # still pending: nothing to create
    assert series.continued_with().step_shape == SPECULATIVE_STEPS


def test_the_assumed_progress_is_what_the_database_would_say_after_the_completion() -> None:
    current = state(step_shape=SPECULATIVE_STEPS, current_due="2026-12-01T15:00:00+00:00")
    assumed = assumed_progress(current, COMPLETION)
    assert assumed == SeriesProgress.model_validate(
        progress(
            current_task_status="completed",
            completed_at=COMPLETED_AT,
            current_due="2026-12-01T15:00:00+00:00",
        )
    )
    assert assumed_progress(dataclasses.replace(current, paused=True), COMPLETION) is None
    assert assumed_progress(current, None) is None
    assert assumed_progress(current, "t1") is None
    assert assumed.anchor == DUE
