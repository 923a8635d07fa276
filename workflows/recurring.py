"""`recurring_task_workflow`: one long-running instance per recurring series.

Each generation waits for an event (or its reconcile timer), reads the
series' progress from the database through an activity, decides what comes
next with the pure `next_step` (the recurrence engine on the workflow's own
clock), creates the next occurrence through an activity when it is due,
and continues as new. Events only wake it: the database decides, so an event
lost around continue-as-new (dapr/dapr#8277) delays a step until the timer,
never drops it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Generator
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from dapr.ext.workflow import DaprWorkflowContext, RetryPolicy, TaskFailedError, when_any

from todos.core.fields import rfc3339
from todos.core.metrics import NEXT_OCCURRENCE, SERIES_STEP_ERRORS
from todos.series import recurrence
from todos.series.contract import (
    CREATE_NEXT_OCCURRENCE,
    EVENTS,
    FINISH_SERIES,
    LOAD_SERIES_PROGRESS,
    SCHEDULE_TASK_REMINDERS,
    SENTINEL_FREE_WAITS,
    SERIES_ENDED,
    SHAPE_1_EVENTS,
    SPECULATIVE_STEPS,
    STALE,
    TASK_COMPLETED,
    ArmedReminders,
    CreatedOccurrence,
    FinishedSeries,
    JsonDataclass,
    NextOccurrence,
    SeriesProgress,
    SeriesState,
    TaskReminders,
)
from workflows.waiting import event_waits, withdraw

log = logging.getLogger(__name__)

# Activities retry transient failures (database restarts, sidecar hiccups);
# past that, the generation gives up quietly and tries again on its timer.
ACTIVITY_RETRY = RetryPolicy(
    first_retry_interval=timedelta(seconds=1),
    max_number_of_attempts=6,
    backoff_coefficient=2.0,
    max_retry_interval=timedelta(seconds=30),
)


# ---- what comes next: pure -----------------------------------------------------------


@dataclass(frozen=True)
class Ended:
    """The series is over: stopped (or gone), or its rule is used up (`finish`:
    recorded by finish_series first)."""

    how: str
    state: SeriesState
    finish: bool = False


@dataclass(frozen=True)
class Hold:
    """Nothing to create now: wait in a new generation with this state.
    `error` is why the next occurrence could not be computed, if that is why."""

    state: SeriesState
    error: Exception | None = None


@dataclass(frozen=True)
class Create:
    """Create this occurrence, then continue from it."""

    state: SeriesState
    occurrence: NextOccurrence


def _refreshed(state: SeriesState, progress: SeriesProgress) -> SeriesState:
    """The state as the database has it (a rule change, pause or resume)."""
    return dataclasses.replace(
        state,
        **progress.schedule(),
        current_task_id=progress.current_task_id or state.current_task_id,
        current_due=progress.current_due,
        paused=progress.status == "paused",
        step_shape=progress.step_shape or state.step_shape,
    )


def assumed_progress(state: SeriesState, woken_by: Any) -> SeriesProgress | None:
    """What the database says once the current occurrence is completed, as the
    state and the completion's event tell it: a speculative step's progress
    (SPECULATIVE_STEPS), which the activity checks under the series' lock.
    None when the event is not that completion, or carries no completion time
    (raised by a deploy before the field)."""
    if state.step_shape < SPECULATIVE_STEPS or state.paused or not isinstance(woken_by, dict):
        return None
    completed_at = woken_by.get("completed_at")
    if woken_by.get("task_id") != state.current_task_id or not isinstance(completed_at, str):
        return None
    if woken_by.get("occurrence_index") != state.occurrence_index:
        return None
    return SeriesProgress(
        **state.schedule(),
        status="active",
        current_task_id=state.current_task_id,
        current_task_status="completed",
        completed_at=completed_at,
        current_due=state.current_due,
    )


def _following(state: SeriesState, progress: SeriesProgress, now: datetime) -> tuple[datetime, int] | None:
    """The occurrence after the current one; None when the rule is used up."""
    rule = recurrence.Recurrence(
        rule=state.rule,
        timezone=state.timezone,
        dtstart=datetime.fromisoformat(state.dtstart),
        basis=state.basis,  # type: ignore[arg-type]
        exdates=tuple(map(datetime.fromisoformat, state.exdates)),
        rdates=tuple(map(datetime.fromisoformat, state.rdates)),
    )
    return recurrence.next_occurrence(
        rule,
        current_due=datetime.fromisoformat(state.anchor),
        current_index=state.rule_index,
        now=now,
        completed_at=datetime.fromisoformat(progress.completed_at) if progress.completed_at else None,
        moved_due=datetime.fromisoformat(progress.current_due) if progress.current_due else None,
    )


def next_step(state: SeriesState, progress: SeriesProgress, now: datetime) -> Ended | Hold | Create:
    """Given where the database says the series stands, what this generation does.

    An error of the engine is a Hold, never an exception: an exception would
    FAIL the instance, and then nothing but the sweeper would move the series;
    a Hold records the error (custom status) and tries again on the timer."""
    if progress.status in ("stopped", "missing"):
        return Ended("stopped", state)
    if progress.status == "finished":
        return Ended("exhausted", state)
    state = _refreshed(state, progress)
    if state.paused or progress.current_task_status == "pending":
        return Hold(dataclasses.replace(state, last_error=None))
    try:
        following = _following(state, progress, now)
    except Exception as error:  # noqa: BLE001 - any engine error: see the docstring
        return Hold(dataclasses.replace(state, last_error=f"{type(error).__name__}: {error}"), error)
    if following is None:
        return Ended("exhausted", state, finish=True)
    due_at, rule_index = following
    occurrence = NextOccurrence(
        series_id=state.series_id,
        occurrence_index=state.occurrence_index + 1,
        rule_index=rule_index,
        due_at=due_at.isoformat(),
        rule=state.rule,
        timezone=state.timezone,
        basis=state.basis,
        dtstart=state.dtstart,
        exdates=state.exdates,
        rdates=state.rdates,
    )
    return Create(state, occurrence)


def after_create(step: Create, created: CreatedOccurrence) -> Ended | Hold:
    """Where the series stands once the activity answered: moved on to the new
    occurrence, ended (stopped meanwhile), or where it was (its rule changed
    meanwhile: the next generation reads it again, woken by series_changed)."""
    if created.refused == SERIES_ENDED:
        return Ended("stopped", step.state)
    if created.refused is not None:
        return Hold(step.state)
    moved_on = dataclasses.replace(
        step.state,
        anchor=created.due_at,
        occurrence_index=created.occurrence_index,
        rule_index=step.occurrence.rule_index,
        current_task_id=created.task_id,
        current_due=None,
        paused=False,
        last_error=None,
    )
    return Hold(moved_on)


# ---- the generation --------------------------------------------------------------------


def _now(ctx: DaprWorkflowContext) -> datetime:
    """The workflow's deterministic clock, as an aware UTC instant (the SDK
    gives a naive one)."""
    return ctx.current_utc_datetime.replace(tzinfo=UTC)


def _wake_at(state: SeriesState, now: datetime) -> datetime:
    """At the due time plus grace, then every reconcile interval."""
    due_check = datetime.fromisoformat(state.anchor) + timedelta(seconds=state.grace_seconds)
    if due_check > now:
        return due_check
    return now + timedelta(seconds=state.reconcile_seconds)


def custom_status(state: SeriesState) -> str:
    status: dict[str, Any] = {
        "current_task_id": state.current_task_id,
        "occurrence_index": state.occurrence_index,
        "next_due_at": rfc3339(datetime.fromisoformat(state.current_due or state.anchor)),
        "paused": state.paused,
    }
    if state.last_error:
        status["last_error"] = state.last_error
    return json.dumps(status)


_Result = TypeVar("_Result", bound=JsonDataclass)


def _activity(
    ctx: DaprWorkflowContext, name: str, arg: Any, result: type[_Result] | None = None
) -> Generator[Any, Any, _Result | bool | None]:
    """The failure policy, in one place: an activity retries what is transient
    (ACTIVITY_RETRY); past that it gives None and the caller holds, so the
    generation tries again on its timer. Without a `result` type, True on success."""
    try:
        value = yield ctx.call_activity(name, input=arg, retry_policy=ACTIVITY_RETRY)
    except TaskFailedError:
        if not ctx.is_replaying:
            log.warning("%s: activity %s failed; holding until the next wake-up", ctx.instance_id, name)
        return None
    return True if result is None else result.model_validate(value)


def recurring_task_workflow(
    ctx: DaprWorkflowContext, state: SeriesState
) -> Generator[Any, Any, dict[str, Any] | None]:
    ctx.set_custom_status(custom_status(state))
    sentinel_free = state.wait_shape >= SENTINEL_FREE_WAITS
    names = EVENTS if sentinel_free else SHAPE_1_EVENTS
    waits = event_waits(ctx, names, sentinel_free=sentinel_free)
    # However this generation waited, the next one waits without sentinels.
    state = dataclasses.replace(state, wait_shape=SENTINEL_FREE_WAITS)
    winner = yield when_any([*waits, ctx.create_timer(_wake_at(state, _now(ctx)))])
    withdraw(ctx, names, waits)

    completion = waits[names.index(TASK_COMPLETED)]
    outcome = yield from _speculative_step(ctx, state, winner.get_result() if winner is completion else None)
    if outcome is None:
        progress = yield from _activity(ctx, LOAD_SERIES_PROGRESS, state.series_id, SeriesProgress)
        if not isinstance(progress, SeriesProgress):
            _hold(ctx, Hold(state))
            return None
        step = _next_step(ctx, state, progress)
        # A step computed from a read is never STALE: _create answers it with an outcome.
        outcome = ((yield from _create(ctx, step)) or Hold(state)) if isinstance(step, Create) else step
    if isinstance(outcome, Hold):
        _hold(ctx, outcome)
        return None
    if outcome.finish:
        finished = FinishedSeries(series_id=state.series_id, reason="exhausted")
        if not (yield from _activity(ctx, FINISH_SERIES, finished)):
            _hold(ctx, Hold(outcome.state))
            return None
        if not ctx.is_replaying:
            log.info(
                "series %s finished after %d occurrences", state.series_id, outcome.state.occurrence_index
            )
    return {"series_id": state.series_id, "ended": outcome.how, "occurrences": outcome.state.occurrence_index}


def _next_step(
    ctx: DaprWorkflowContext, state: SeriesState, progress: SeriesProgress
) -> Ended | Hold | Create:
    # Timed on the first run only (a replay computes it again, and would count twice).
    with nullcontext() if ctx.is_replaying else NEXT_OCCURRENCE.time():
        return next_step(state, progress, _now(ctx))


def _speculative_step(
    ctx: DaprWorkflowContext, state: SeriesState, woken_by: Any
) -> Generator[Any, Any, Ended | Hold | None]:
    """Woken by the current occurrence's completion: create the next one without
    reading the progress first. None when this generation must read it: not
    that completion, nothing to create (ends and holds are decided on what the
    database says), or the activity found the database says otherwise."""
    assumed = assumed_progress(state, woken_by)
    if assumed is None:
        return None
    step = _next_step(ctx, state, assumed)
    if not isinstance(step, Create):
        return None
    occurrence = dataclasses.replace(step.occurrence, assumed=assumed.model_dump())
    return (yield from _create(ctx, Create(step.state, occurrence)))


def _create(ctx: DaprWorkflowContext, step: Create) -> Generator[Any, Any, Ended | Hold | None]:
    """Create the next occurrence and arm its reminders; where the series stands
    after (None: a speculative step the database did not bear out)."""
    created = yield from _activity(ctx, CREATE_NEXT_OCCURRENCE, step.occurrence, CreatedOccurrence)
    if not isinstance(created, CreatedOccurrence):
        return Hold(step.state)
    if created.refused == STALE:
        return None
    outcome = after_create(step, created)
    if created.refused is not None:
        return outcome
    # Most occurrences have no reminder: no activity, no turn of the engine. Reminders
    # that cannot be armed are the sweeper's (their rows say "not armed yet").
    if created.reminders_to_arm != 0:
        yield from _activity(ctx, SCHEDULE_TASK_REMINDERS, TaskReminders(created.task_id), ArmedReminders)
    if not ctx.is_replaying:
        log.info(
            "series %s: occurrence %d due %s", step.state.series_id, created.occurrence_index, created.due_at
        )
    return outcome


def _hold(ctx: DaprWorkflowContext, hold: Hold) -> None:
    """Wait for the next event or timer in a new generation (history stays short)."""
    if hold.error is not None and not ctx.is_replaying:
        SERIES_STEP_ERRORS.inc()
        log.error("series %s: next occurrence not computed: %r", hold.state.series_id, hold.error)
    ctx.continue_as_new(hold.state, save_events=True)
