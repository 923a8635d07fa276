"""Event waits without sentinel timers, run through the SDK's own orchestration
executor (no sidecar): what the workflow asks daprd to schedule, how a raised
or carried-over event completes a wait, and that a generation whose input
says it began with the SDK's own waits replays on that path, whatever daprd
recorded about patches."""

from __future__ import annotations

import json
import logging
from collections.abc import Generator, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from dapr.ext.workflow import DaprWorkflowContext, when_any
from dapr.ext.workflow._durabletask.internal import helpers, protos, timer
from dapr.ext.workflow._durabletask.worker import ExecutionResults, _OrchestrationExecutor, _Registry

from workflows.waiting import event_waits

pytestmark = pytest.mark.unit

NAMES = ("task_completed", "series_stopped")
STARTED = datetime(2026, 12, 1, 15, 0)
WAKE_AT = STARTED + timedelta(hours=1)
INSTANCE = "series-probe"


def probe(ctx: DaprWorkflowContext, sentinel_free: bool) -> Generator[Any, Any, dict[str, Any]]:
    waits = event_waits(ctx, NAMES, sentinel_free=sentinel_free)
    winner = yield when_any([*waits, ctx.create_timer(WAKE_AT)])
    if winner in waits:
        return {"woken_by": NAMES[waits.index(winner)], "data": winner.get_result()}
    return {"woken_by": "timer"}


def run(old: Sequence[protos.HistoryEvent], new: Sequence[protos.HistoryEvent]) -> ExecutionResults:
    registry = _Registry()
    registry.add_named_orchestrator("probe", lambda ctx, inp: probe(DaprWorkflowContext(ctx), inp))
    return _OrchestrationExecutor(registry, logging.getLogger("test")).execute(INSTANCE, old, new)


def workflow_started() -> protos.HistoryEvent:
    return helpers.new_workflow_started_event(STARTED)


def generation_start(*, sentinel_free: bool = True) -> list[protos.HistoryEvent]:
    started = helpers.new_execution_started_event("probe", INSTANCE, json.dumps(sentinel_free))
    return [workflow_started(), started]


def timers(results: ExecutionResults) -> list[protos.CreateTimerAction]:
    return [action.createTimer for action in results.actions if action.HasField("createTimer")]


def outcome(results: ExecutionResults) -> dict[str, Any]:
    (action,) = results.actions
    assert action.HasField("completeWorkflow"), action
    return json.loads(action.completeWorkflow.result.value)  # type: ignore[no-any-return]


def event(name: str, data: Any) -> protos.HistoryEvent:
    return helpers.new_event_raised_event(name, json.dumps(data))


def test_a_new_generation_schedules_only_its_own_timer() -> None:
    results = run([], generation_start())
    (only,) = timers(results)
    assert [action.id for action in results.actions] == [1], "the waits took sequence numbers"
    assert not only.HasField("externalEvent"), "a wait asked daprd for a sentinel timer job"
    assert only.fireAt.ToDatetime() == WAKE_AT


def test_a_raised_event_completes_its_wait_whatever_the_case_of_its_name() -> None:
    history = [*generation_start(), timer.new_timer_created_event(1, WAKE_AT)]
    results = run(history, [workflow_started(), event("Series_Stopped", {"by": "alice"})])
    assert outcome(results) == {"woken_by": "series_stopped", "data": {"by": "alice"}}


def test_an_event_carried_over_by_continue_as_new_wakes_the_generation_at_once() -> None:
    results = run([], [*generation_start(), event("task_completed", {"task_id": "t1"})])
    assert outcome(results) == {"woken_by": "task_completed", "data": {"task_id": "t1"}}


def test_the_timer_still_wakes_a_generation_nobody_signals() -> None:
    history = [*generation_start(), timer.new_timer_created_event(1, WAKE_AT)]
    results = run(history, [workflow_started(), timer.new_timer_fired_event(1, WAKE_AT)])
    assert outcome(results) == {"woken_by": "timer"}


def test_a_generation_begun_with_the_sdk_waits_replays_on_that_path() -> None:
    # What SDK 1.18.3's plain waits wrote: one sentinel timer per event name, then ours.
    sentinel = timer.OPTIONAL_TIMER_FIRE_AT
    history = [
        *generation_start(sentinel_free=False),
        *(
            timer.new_timer_created_event(i, sentinel, protos.TimerOriginExternalEvent(name=name))
            for i, name in enumerate(NAMES, start=1)
        ),
        timer.new_timer_created_event(len(NAMES) + 1, WAKE_AT),
    ]
    results = run(history, [workflow_started(), event("task_completed", None)])
    assert outcome(results) == {"woken_by": "task_completed", "data": None}


def test_a_completed_wait_is_not_completed_again_by_a_second_event() -> None:
    history = [*generation_start(), timer.new_timer_created_event(1, WAKE_AT)]
    results = run(history, [workflow_started(), event("task_completed", 1), event("task_completed", 2)])
    assert outcome(results) == {"woken_by": "task_completed", "data": 1}
