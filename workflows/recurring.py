"""`recurring_task_workflow`: one long-running instance per recurring series.

Each generation waits for an event (or its reconcile timer), reads the
series' progress from the database through an activity, and when the current
occurrence is done computes the next one (pure recurrence engine, with the
workflow's own clock) and creates it through an activity, then continues as
new. Events only wake it: the database decides, so an event lost around
continue-as-new (dapr/dapr#8277) delays a step until the timer, never drops it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Generator
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

from dapr.ext.workflow import DaprWorkflowContext, RetryPolicy, TaskFailedError, when_any

from todos import recurrence
from todos.metrics import NEXT_OCCURRENCE, SERIES_STEP_ERRORS
from todos.models import rfc3339
from todos.orchestration import (
    CREATE_NEXT_OCCURRENCE,
    EVENTS,
    FINISH_SERIES,
    LOAD_SERIES_PROGRESS,
    SCHEDULE_TASK_REMINDERS,
    SENTINEL_FREE_WAITS,
    SERIES_ENDED,
    CreatedOccurrence,
    FinishedSeries,
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


def _refreshed(state: SeriesState, progress: SeriesProgress) -> SeriesState:
    """The state as the database has it (a rule change, pause or resume)."""
    return dataclasses.replace(
        state,
        **progress.schedule(),
        current_task_id=progress.current_task_id or state.current_task_id,
        current_due=progress.current_due,
        paused=progress.status == "paused",
    )


def _following(
    ctx: DaprWorkflowContext, state: SeriesState, progress: SeriesProgress
) -> tuple[datetime, int] | Exception | None:
    """The occurrence after the current one (None: the rule is used up), or
    the error that kept the engine from computing it. Caught rather than
    raised: an exception here would FAIL the instance, and nothing restarts a
    failed instance but the sweeper; this way the generation records the
    error and tries again on its timer."""
    try:
        rule = recurrence.Recurrence(
            rule=state.rule,
            timezone=state.timezone,
            dtstart=datetime.fromisoformat(state.dtstart),
            basis=state.basis,  # type: ignore[arg-type]
        )
        completed_at = datetime.fromisoformat(progress.completed_at) if progress.completed_at else None
        due = datetime.fromisoformat(progress.current_due) if progress.current_due else None
        # Timed on the first run only (a replay computes it again, and would count twice).
        with nullcontext() if ctx.is_replaying else NEXT_OCCURRENCE.time():
            return recurrence.next_occurrence(
                rule,
                current_due=datetime.fromisoformat(state.anchor),
                current_index=state.rule_index,
                now=_now(ctx),
                completed_at=completed_at,
                moved_due=due,
            )
    except Exception as error:  # noqa: BLE001 - any engine error: see the docstring
        return error


def _ended(state: SeriesState, how: str) -> dict[str, Any]:
    return {"series_id": state.series_id, "ended": how, "occurrences": state.occurrence_index}


def _hold(ctx: DaprWorkflowContext, state: SeriesState) -> None:
    """Wait for the next event or timer in a new generation (history stays short)."""
    ctx.continue_as_new(state, save_events=True)


def recurring_task_workflow(
    ctx: DaprWorkflowContext, state: SeriesState
) -> Generator[Any, Any, dict[str, Any] | None]:
    ctx.set_custom_status(custom_status(state))
    waits = event_waits(ctx, EVENTS, sentinel_free=state.wait_shape >= SENTINEL_FREE_WAITS)
    # However this generation waited, the next one waits without sentinels.
    state = dataclasses.replace(state, wait_shape=SENTINEL_FREE_WAITS)
    yield when_any([*waits, ctx.create_timer(_wake_at(state, _now(ctx)))])
    withdraw(ctx, EVENTS, waits)

    try:
        progress = SeriesProgress.model_validate(
            (
                yield ctx.call_activity(
                    LOAD_SERIES_PROGRESS, input=state.series_id, retry_policy=ACTIVITY_RETRY
                )
            )
        )
    except TaskFailedError:
        _hold(ctx, state)
        return None

    if progress.status in ("stopped", "missing"):
        return _ended(state, "stopped")
    if progress.status == "finished":
        return _ended(state, "exhausted")
    state = _refreshed(state, progress)
    if state.paused or progress.current_task_status == "pending":
        _hold(ctx, dataclasses.replace(state, last_error=None))
        return None

    following = _following(ctx, state, progress)
    if isinstance(following, Exception):
        if not ctx.is_replaying:
            SERIES_STEP_ERRORS.inc()
            log.error("series %s: next occurrence not computed: %r", state.series_id, following)
        _hold(ctx, dataclasses.replace(state, last_error=f"{type(following).__name__}: {following}"))
        return None
    try:
        if following is None:
            yield ctx.call_activity(
                FINISH_SERIES,
                input=FinishedSeries(series_id=state.series_id, reason="exhausted"),
                retry_policy=ACTIVITY_RETRY,
            )
            if not ctx.is_replaying:
                log.info("series %s finished after %d occurrences", state.series_id, state.occurrence_index)
            return _ended(state, "exhausted")
        due_at, rule_index = following
        created = CreatedOccurrence.model_validate(
            (
                yield ctx.call_activity(
                    CREATE_NEXT_OCCURRENCE,
                    input=NextOccurrence(
                        series_id=state.series_id,
                        occurrence_index=state.occurrence_index + 1,
                        rule_index=rule_index,
                        due_at=due_at.isoformat(),
                        rule=state.rule,
                        timezone=state.timezone,
                        basis=state.basis,
                        dtstart=state.dtstart,
                    ),
                    retry_policy=ACTIVITY_RETRY,
                )
            )
        )
    except TaskFailedError:
        _hold(ctx, state)
        return None

    if created.refused == SERIES_ENDED:
        return _ended(state, "stopped")
    if created.refused is not None:
        # The rule changed after it was read: the next generation reads it
        # again (the change's series_changed event wakes it at once).
        _hold(ctx, state)
        return None
    yield from _arm_reminders(ctx, state, created)
    if not ctx.is_replaying:
        log.info("series %s: occurrence %d due %s", state.series_id, created.occurrence_index, created.due_at)
    _hold(
        ctx,
        dataclasses.replace(
            state,
            anchor=created.due_at,
            occurrence_index=created.occurrence_index,
            rule_index=rule_index,
            current_task_id=created.task_id,
            current_due=None,
            paused=False,
            last_error=None,
        ),
    )
    return None


def _arm_reminders(
    ctx: DaprWorkflowContext, state: SeriesState, created: CreatedOccurrence
) -> Generator[Any, Any, None]:
    # Most occurrences have no reminder: no activity, no turn of the engine.
    if created.reminders_to_arm == 0:
        return
    try:
        yield ctx.call_activity(
            SCHEDULE_TASK_REMINDERS,
            input=TaskReminders(task_id=created.task_id),
            retry_policy=ACTIVITY_RETRY,
        )
    except TaskFailedError:
        # The occurrence exists and its reminder rows say "not armed yet": the
        # app's sweeper arms them, so the series moves on regardless.
        if not ctx.is_replaying:
            log.warning(
                "series %s: reminders of task %s left to the sweeper", state.series_id, created.task_id
            )
