"""Events raised while a generation of `recurring_task_workflow` is busy reach
the next generation: run through the SDK's own orchestration executor (no
sidecar), with the histories daprd would send."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from dapr.ext.workflow import DaprWorkflowContext
from dapr.ext.workflow._durabletask.internal import helpers, protos, timer
from dapr.ext.workflow._durabletask.worker import ExecutionResults, _OrchestrationExecutor, _Registry

from tests.unit.workflows.states import progress, state
from todos.series.contract import (
    LOAD_SERIES_PROGRESS,
    SENTINEL_FREE_WAITS,
    SERIES_PAUSED,
    TASK_COMPLETED,
    WORKFLOW_NAME,
    SeriesState,
)
from workflows.recurring import recurring_task_workflow

pytestmark = pytest.mark.unit

STARTED = datetime(2026, 12, 1, 15, 0)
INSTANCE = "series-s1"
STATE = state()
PENDING = progress()


def run(old: Sequence[protos.HistoryEvent], new: Sequence[protos.HistoryEvent]) -> ExecutionResults:
    registry = _Registry()
    registry.add_named_orchestrator(
        WORKFLOW_NAME,
        lambda ctx, state: recurring_task_workflow(
            DaprWorkflowContext(ctx), SeriesState.model_validate(state)
        ),
    )
    return _OrchestrationExecutor(registry, logging.getLogger("test")).execute(INSTANCE, old, new)


def carried_over(results: ExecutionResults) -> list[str]:
    (action,) = results.actions
    assert action.completeWorkflow.workflowStatus == protos.ORCHESTRATION_STATUS_CONTINUED_AS_NEW
    return [event.eventRaised.name for event in action.completeWorkflow.carryoverEvents]


@pytest.mark.parametrize("wait_shape", [SENTINEL_FREE_WAITS, 1], ids=["sentinel-free", "sdk waits"])
def test_an_event_raised_right_after_the_one_that_woke_the_generation_is_carried_over(
    wait_shape: int,
) -> None:
    """series_paused raised just after task_completed: the wait for it that lost
    the race must not swallow it, or the series hears of its pause only at the
    reconcile timer (an hour by default)."""
    state = dataclasses.replace(STATE, wait_shape=wait_shape)
    started = [
        helpers.new_workflow_started_event(STARTED),
        helpers.new_execution_started_event(WORKFLOW_NAME, INSTANCE, json.dumps(dataclasses.asdict(state))),
    ]
    waiting = recorded(run([], started))
    woken = [
        helpers.new_workflow_started_event(STARTED + timedelta(seconds=1)),
        helpers.new_event_raised_event(TASK_COMPLETED, json.dumps({"task_id": "t1"})),
        helpers.new_event_raised_event(SERIES_PAUSED, None),
    ]
    loading = run([*started, *waiting], woken)
    (load,) = [a for a in loading.actions if a.HasField("scheduleTask")]
    assert load.scheduleTask.name == LOAD_SERIES_PROGRESS
    loaded = [
        helpers.new_workflow_started_event(STARTED + timedelta(seconds=2)),
        helpers.new_task_completed_event(load.id, json.dumps(PENDING)),
    ]
    held = run([*started, *waiting, *woken, *recorded(loading)], loaded)
    assert carried_over(held) == [SERIES_PAUSED]


def recorded(results: ExecutionResults) -> list[protos.HistoryEvent]:
    """The history events daprd records for the actions of a turn."""
    events = []
    for action in results.actions:
        if action.HasField("createTimer"):
            created = action.createTimer
            origin = created.externalEvent if created.HasField("externalEvent") else None
            events.append(timer.new_timer_created_event(action.id, created.fireAt, origin))
        elif action.HasField("scheduleTask"):
            events.append(helpers.new_task_scheduled_event(action.id, action.scheduleTask.name))
    return events
