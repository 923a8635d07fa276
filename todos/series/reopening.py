"""Reopening an occurrence of a series: when the occurrence created after it
may be withdrawn, and the series put back one step."""

from __future__ import annotations

from datetime import datetime

from todos.series.models import Series
from todos.tasks.models import Task, TaskStatus


def why_not_withdrawn(series: Series, task: Task, following: Task | None, reminded: bool) -> str | None:
    """Why the occurrence after `task` (the series' current one, `following`)
    cannot give way to it; None when it can. `reminded`: one of its reminders
    went out (or is going out) already."""
    if following is None or task.occurrence_index != series.occurrence_index - 1:
        return (
            f"task_id: only the latest completed or skipped occurrence of a series can be reopened; this is "
            f"occurrence #{task.occurrence_index} and the series is at #{series.occurrence_index}."
        )
    after = f"occurrence #{following.occurrence_index} (task {following.id}), created after this one,"
    if following.status != TaskStatus.pending:
        return f"task_id: {after} is {following.status} already; reopen that one instead."
    if following.updated_at != following.created_at:
        return (
            f"task_id: {after} has been edited since, so it is not withdrawn for this one; "
            "complete, skip or delete it instead."
        )
    if reminded:
        return f"task_id: {after} has sent its reminder already, so it is not withdrawn for this one."
    if series.previous_anchor_at is None or series.previous_rule_index is None:
        return (
            "task_id: the series cannot step back to this occurrence: it moved on before reopening was "
            "recorded, or this occurrence was reopened once already; only one step back is kept."
        )
    return None


def step_back(series: Series, task: Task, now: datetime) -> None:
    """Make `task` the series' current occurrence again, where it stood in the
    rule (the withdrawn occurrence was its only step since)."""
    assert series.previous_anchor_at is not None and series.previous_rule_index is not None
    series.current_task_id = task.id
    series.occurrence_index -= 1  # the task's: why_not_withdrawn checked it
    series.anchor_at = series.previous_anchor_at
    series.rule_index = series.previous_rule_index
    series.previous_anchor_at = None
    series.previous_rule_index = None
    series.occurrences_created -= 1
    series.updated_at = now
