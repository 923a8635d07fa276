"""The workflow's decisions, driven step by step with a fake context (no
sidecar): what it waits for, which activity it calls with what, and how it
continues."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dapr.ext.workflow import TaskFailedError
from dapr.ext.workflow._durabletask.internal.protos import TaskFailureDetails

from tests.unit.workflows.states import DUE, progress, state
from todos.series.contract import (
    CREATE_NEXT_OCCURRENCE,
    EVENTS,
    FINISH_SERIES,
    LOAD_SERIES_PROGRESS,
    RULE_CHANGED,
    SCHEDULE_TASK_REMINDERS,
    SENTINEL_FREE_WAITS,
    SERIES_ENDED,
    SHAPE_1_EVENTS,
    NextOccurrence,
    SeriesState,
    TaskReminders,
)
from workflows import recurring

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 15, 0)  # naive, like the SDK's clock


class FakeContext:
    def __init__(self) -> None:
        self.current_utc_datetime = NOW
        self.instance_id = "series-s1"
        self.is_replaying = False
        self.custom_status: str | None = None
        self.waited: list[str] = []
        self.sentinel_free: list[bool] = []
        self.timers: list[datetime] = []
        self.continued_with: Any = None

    def set_custom_status(self, status: str) -> None:
        self.custom_status = status

    def event_waits(self, names: list[str], sentinel_free: bool) -> list[tuple[str, str]]:
        self.waited.extend(names)
        self.sentinel_free.append(sentinel_free)
        return [("event", name) for name in names]

    def create_timer(self, fire_at: datetime) -> tuple[str, datetime]:
        self.timers.append(fire_at)
        return ("timer", fire_at)

    def call_activity(self, name: str, *, input: Any, retry_policy: Any) -> tuple[str, Any]:
        return (name, input)

    def continue_as_new(self, new_input: Any, *, save_events: bool = False) -> None:
        assert save_events, "events raised during the hand-over must be kept"
        self.continued_with = new_input


@pytest.fixture(autouse=True)
def _plain_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recurring, "when_any", lambda tasks: ("any", tasks))
    # How the waits are registered with the SDK is tests/unit/workflows/test_waiting.py's.
    monkeypatch.setattr(
        recurring, "event_waits", lambda ctx, names, sentinel_free: ctx.event_waits(names, sentinel_free)
    )
    monkeypatch.setattr(recurring, "withdraw", lambda ctx, names, waits: None)


def start(ctx: FakeContext, initial: SeriesState) -> tuple[Generator[Any, Any, Any], Any]:
    workflow = recurring.recurring_task_workflow(ctx, initial)  # type: ignore[arg-type]
    first = next(workflow)
    return workflow, first


def run_to_end(workflow: Generator[Any, Any, Any], value: Any) -> Any:
    try:
        workflow.send(value)
    except StopIteration as done:
        return done.value
    raise AssertionError("the workflow yielded again")


def test_waits_for_every_event_or_the_timer_and_reports_custom_status() -> None:
    ctx = FakeContext()
    _, first = start(ctx, state())
    assert ctx.waited == list(EVENTS)
    assert first[0] == "any" and len(first[1]) == len(EVENTS) + 1
    assert ctx.custom_status is not None
    assert '"next_due_at": "2026-12-01T14:00:00Z"' in ctx.custom_status
    # Due + grace is already past at NOW, so the timer is the periodic one.
    assert ctx.timers == [NOW.replace(tzinfo=UTC) + timedelta(seconds=3600)]


def test_a_generation_begun_with_the_sdk_waits_keeps_them_and_hands_on_sentinel_free() -> None:
    ctx = FakeContext()
    workflow, _ = start(ctx, state(wait_shape=1))
    assert ctx.sentinel_free == [False]
    # Each SDK wait is a timer in the history: its replay waits for the names it waited for then.
    assert ctx.waited == list(SHAPE_1_EVENTS) and "task_reopened" not in SHAPE_1_EVENTS
    workflow.send(None)
    run_to_end(workflow, progress())  # still pending: continues as new
    handed_on = ctx.continued_with
    assert handed_on.wait_shape == SENTINEL_FREE_WAITS
    next_ctx = FakeContext()
    start(next_ctx, handed_on)
    assert next_ctx.sentinel_free == [True]


def test_timer_fires_at_due_plus_grace_when_that_is_ahead() -> None:
    ctx = FakeContext()
    start(ctx, state(anchor="2026-12-02T14:00:00+00:00"))
    assert ctx.timers == [datetime(2026, 12, 2, 14, 5, tzinfo=UTC)]


def test_pending_occurrence_continues_waiting_without_side_effects() -> None:
    ctx = FakeContext()
    workflow, _ = start(ctx, state())
    assert workflow.send(None) == (LOAD_SERIES_PROGRESS, "s1")
    assert run_to_end(workflow, progress()) is None
    assert ctx.continued_with == state()


def test_completed_occurrence_creates_the_next_one_and_continues_from_it() -> None:
    ctx = FakeContext()
    workflow, _ = start(ctx, state())
    workflow.send(None)
    name, step = workflow.send(
        progress(current_task_status="completed", completed_at="2026-12-01T14:30:00+00:00")
    )
    assert name == CREATE_NEXT_OCCURRENCE
    assert step == NextOccurrence(
        series_id="s1",
        occurrence_index=2,
        rule_index=2,
        due_at="2026-12-02T14:00:00+00:00",
        rule="FREQ=DAILY",
        timezone="America/New_York",
        basis="schedule",
        dtstart=DUE,
        exdates=[],
        rdates=[],
    )
    created = {"task_id": "t2", "occurrence_index": 2, "due_at": step.due_at}
    assert workflow.send(created) == (SCHEDULE_TASK_REMINDERS, TaskReminders(task_id="t2"))
    assert run_to_end(workflow, {"task_id": "t2", "armed": 1}) is None
    assert ctx.continued_with == state(
        anchor="2026-12-02T14:00:00+00:00", occurrence_index=2, rule_index=2, current_task_id="t2"
    )


def test_an_occurrence_without_reminders_to_arm_skips_the_reminder_activity() -> None:
    ctx = FakeContext()
    workflow, _ = start(ctx, state())
    workflow.send(None)
    workflow.send(progress(current_task_status="completed", completed_at="2026-12-01T14:30:00+00:00"))
    created = {"task_id": "t2", "occurrence_index": 2, "due_at": "2026-12-02T14:00:00+00:00"}
    assert run_to_end(workflow, {**created, "reminders_to_arm": 0}) is None
    assert ctx.continued_with.current_task_id == "t2"


@pytest.mark.parametrize(
    "recorded", [{"reminders_to_arm": 2}, {}], ids=["some to arm", "recorded before the count"]
)
def test_reminders_to_arm_or_an_unknown_count_run_the_reminder_activity(recorded: dict[str, int]) -> None:
    """A result recorded before `reminders_to_arm` existed replays as it ran: armed."""
    ctx = FakeContext()
    workflow, _ = start(ctx, state())
    workflow.send(None)
    workflow.send(progress(current_task_status="completed", completed_at="2026-12-01T14:30:00+00:00"))
    created = {"task_id": "t2", "occurrence_index": 2, "due_at": "2026-12-02T14:00:00+00:00"}
    assert workflow.send({**created, **recorded}) == (SCHEDULE_TASK_REMINDERS, TaskReminders(task_id="t2"))


def test_reminders_that_cannot_be_armed_do_not_hold_the_series_back() -> None:
    """The new occurrence exists either way; the sweeper arms its reminders."""
    ctx = FakeContext()
    workflow, _ = start(ctx, state())
    workflow.send(None)
    workflow.send(progress(current_task_status="completed", completed_at="2026-12-01T14:30:00+00:00"))
    workflow.send({"task_id": "t2", "occurrence_index": 2, "due_at": "2026-12-02T14:00:00+00:00"})
    with contextlib.suppress(StopIteration):
        workflow.throw(
            TaskFailedError("sidecar down", TaskFailureDetails(errorMessage="down", errorType="E"))
        )
    assert ctx.continued_with.current_task_id == "t2"
    assert ctx.continued_with.occurrence_index == 2


def test_paused_series_holds_even_when_completed() -> None:
    ctx = FakeContext()
    workflow, _ = start(ctx, state())
    workflow.send(None)
    assert run_to_end(workflow, progress(status="paused", current_task_status="completed")) is None
    assert ctx.continued_with.paused is True


def test_stopped_series_ends_the_workflow() -> None:
    ctx = FakeContext()
    workflow, _ = start(ctx, state())
    workflow.send(None)
    assert run_to_end(workflow, progress(status="stopped"))["ended"] == "stopped"
    assert ctx.continued_with is None


def test_exhausted_rule_finishes_the_series() -> None:
    ctx = FakeContext()
    workflow, _ = start(ctx, state(rule="FREQ=DAILY;COUNT=1"))
    workflow.send(None)
    name, finished = workflow.send(progress(rule="FREQ=DAILY;COUNT=1", current_task_status="completed"))
    assert name == FINISH_SERIES and finished.reason == "exhausted"
    assert run_to_end(workflow, None)["ended"] == "exhausted"


def test_failed_activity_retries_on_the_next_generation() -> None:
    ctx = FakeContext()
    workflow, _ = start(ctx, state())
    workflow.send(None)
    with contextlib.suppress(StopIteration):
        workflow.throw(
            TaskFailedError("database down", TaskFailureDetails(errorMessage="down", errorType="E"))
        )
    assert ctx.continued_with == state()


def test_an_engine_error_holds_the_generation_with_the_error_shown_instead_of_failing() -> None:
    """A state the engine cannot compute from (here a zone that does not exist) must not FAIL the
    instance: the generation records the error and waits for its timer, and the next generation
    shows it in the custom status."""
    ctx = FakeContext()
    broken = state(timezone="Mars/Olympus_Mons")
    workflow, _ = start(ctx, broken)
    workflow.send(None)
    done = progress(timezone="Mars/Olympus_Mons", current_task_status="completed")
    assert run_to_end(workflow, done) is None
    held = ctx.continued_with
    assert held.occurrence_index == 1 and held.current_task_id == "t1"
    assert held.last_error and "Mars/Olympus_Mons" in held.last_error
    next_ctx = FakeContext()
    start(next_ctx, held)
    assert next_ctx.custom_status is not None
    assert json.loads(next_ctx.custom_status)["last_error"] == held.last_error


def test_a_step_refused_because_the_series_was_stopped_ends_the_workflow() -> None:
    ctx = FakeContext()
    workflow, _ = start(ctx, state())
    workflow.send(None)
    workflow.send(progress(current_task_status="completed", completed_at="2026-12-01T14:30:00+00:00"))
    refused = {"task_id": "", "occurrence_index": 2, "due_at": "2026-12-02T14:00:00+00:00"}
    assert run_to_end(workflow, {**refused, "refused": SERIES_ENDED})["ended"] == "stopped"
    assert ctx.continued_with is None


def test_a_step_refused_because_the_rule_changed_reads_the_series_again_without_moving_on() -> None:
    ctx = FakeContext()
    workflow, _ = start(ctx, state())
    workflow.send(None)
    workflow.send(progress(current_task_status="completed", completed_at="2026-12-01T14:30:00+00:00"))
    refused = {"task_id": "", "occurrence_index": 2, "due_at": "2026-12-02T14:00:00+00:00"}
    assert run_to_end(workflow, {**refused, "refused": RULE_CHANGED}) is None
    assert ctx.continued_with.occurrence_index == 1
    assert ctx.continued_with.current_task_id == "t1"


def test_a_moved_current_occurrence_is_reported_and_stepped_from_its_slot() -> None:
    """Progress says the current task was moved to 08:30 (13:30Z), before its 09:00 slot."""
    ctx = FakeContext()
    ctx.current_utc_datetime = datetime(2026, 12, 1, 13, 35)
    workflow, _ = start(ctx, state())
    workflow.send(None)
    moved = progress(
        current_task_status="completed",
        completed_at="2026-12-01T13:35:00+00:00",
        current_due="2026-12-01T13:30:00+00:00",
    )
    _, step = workflow.send(moved)
    assert step.due_at == "2026-12-02T14:00:00+00:00" and step.rule_index == 2
