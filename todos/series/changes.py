"""A series' rule applied to its rows: parsing a task's recurrence, the
series a task starts, a rule change, and what each next occurrence copies.
The callers hold the rows' locks; nothing here commits."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from todos.core.errors import Conflict, InvalidInput
from todos.core.users import User
from todos.series import recurrence
from todos.series.models import LIVE_STATUSES, Basis, RecurrenceSpec, Series
from todos.tasks.models import Task


def recurrence_error(error: recurrence.RecurrenceError, prefix: str) -> InvalidInput:
    """Name the field as the client sent it: a task's dtstart is its due_at."""
    field = "due_at" if prefix and error.field == "dtstart" else f"{prefix}{error.field}"
    return InvalidInput(str(error), field=field, code=error.code)


def parse_recurrence(
    spec: RecurrenceSpec,
    dtstart: datetime,
    prefix: str,
    min_interval: timedelta,
    *,
    replacing: Series | None = None,
    default_timezone: str = "UTC",
) -> recurrence.Recurrence:
    """The spec's recurrence set. A rule change (``replacing`` a series' rule)
    keeps the series' zone unless the spec names one, and its exceptions
    still after the new start unless the spec gives its own: a new time zone
    must not bring back a skipped date. A new series without a zone is in
    `default_timezone` (the person's)."""
    given = spec.model_fields_set
    if "timezone" in given:
        timezone = spec.timezone
    else:
        timezone = replacing.timezone if replacing is not None else default_timezone
    try:
        rec = recurrence.parse(
            spec.rule,
            timezone=timezone,
            dtstart=dtstart,
            basis=spec.basis.value,
            min_interval=min_interval,
            # A request may not spend more than its share of CPU on a rule (RULE_TOO_SPARSE past it).
            budget=recurrence.Budget(),
        )
        kept = {
            name: getattr(spec, name)
            if replacing is None or name in given
            else [moment for moment in getattr(replacing, name) if moment > rec.dtstart]
            for name in ("exdates", "rdates")
        }
        if not kept["exdates"] and not kept["rdates"]:
            return rec
        return recurrence.with_exceptions(rec, exdates=kept["exdates"], rdates=kept["rdates"])
    except recurrence.RecurrenceError as error:
        raise recurrence_error(error, prefix) from error


def recurrence_of(series: Series) -> recurrence.Recurrence:
    return recurrence.Recurrence(
        rule=series.rule,
        timezone=series.timezone,
        dtstart=series.dtstart,
        basis=Basis(series.basis).value,
        exdates=tuple(series.exdates),
        rdates=tuple(series.rdates),
    )


def template(task: Task) -> dict[str, Any]:
    """What each next occurrence copies; `at` reminders are absolute, so
    only `before` offsets carry over, and a checklist comes back unticked."""
    return {
        "title": task.title,
        "description": task.description,
        "priority": str(task.priority),
        "tags": list(task.tags),
        "reminders": [r for r in task.reminders if "before" in r],
        "checklist": [{"text": item["text"], "done": False} for item in task.checklist],
        "notify_email": task.notify_email,
        "notify_timezone": task.notify_timezone,
    }


def new_series(user: User, task: Task, rec: recurrence.Recurrence, now: datetime) -> Series:
    """A series whose occurrence #1 is `task` (due at the rule's first occurrence)."""
    series = Series(
        id=uuid.uuid4(),
        user_id=user.id,
        rule=rec.rule,
        timezone=rec.timezone,
        basis=Basis(rec.basis),
        dtstart=rec.dtstart,
        anchor_at=rec.dtstart,
        occurrence_index=1,
        rule_index=1,
        current_task_id=task.id,
        occurrences_created=1,
        template=template(task),
        exdates=list(rec.exdates),
        rdates=list(rec.rdates),
        created_at=now,
        updated_at=now,
    )
    task.series_id = series.id
    task.occurrence_index = 1
    task.due_at = rec.dtstart
    return series


def check_rule_change(series: Series, task: Task) -> None:
    """A new rule counts from the series' current occurrence, so only that
    one, in a live series, can take it: through an older occurrence its due
    date would become the new start, and the weeks since would use up COUNT."""
    if series.status not in LIVE_STATUSES:
        raise Conflict(
            f"recurrence: the series has ended ({series.status}); create a new recurring task instead.",
            field="recurrence",
        )
    if task.id != series.current_task_id:
        current = (
            f"task {series.current_task_id} (occurrence #{series.occurrence_index})"
            if series.current_task_id
            else "being created"
        )
        raise Conflict(
            f"recurrence: a rule change applies from the series' current occurrence, and this task is "
            f"occurrence #{task.occurrence_index}; the current one is {current}: change the rule there.",
            field="recurrence",
        )


def change_rule(series: Series, task: Task, rec: recurrence.Recurrence, now: datetime) -> None:
    """A new rule counts from the current occurrence: it becomes #1 of the
    new rule (so a new COUNT means "N more including this one")."""
    series.rule = rec.rule
    series.timezone = rec.timezone
    series.basis = Basis(rec.basis)
    series.dtstart = rec.dtstart
    series.anchor_at = rec.dtstart
    series.rule_index = 1
    series.exdates = list(rec.exdates)
    series.rdates = list(rec.rdates)
    if task.id == series.current_task_id:
        task.due_at = rec.dtstart
    series.updated_at = now
