"""Steering one date of a series ahead of time: the checks that a date is
one the series will create, and what a skip or a move writes (EXDATE,
RDATE). The caller holds the series' lock; nothing here commits."""

from __future__ import annotations

from datetime import datetime

from todos.core.errors import Conflict, InvalidInput
from todos.core.fields import rfc3339
from todos.series.coming import MAX_LISTED, coming
from todos.series.models import Basis, Series
from todos.series.recurrence.engine import instant_of, zone_of
from todos.series.recurrence.rules import MAX_EXCEPTIONS
from todos.tasks.models import Task


def current_due(series: Series, current: Task) -> datetime:
    return current.due_at or series.anchor_at


def check_coming(
    series: Series, current: Task, due_at: datetime, now: datetime, field: str
) -> list[datetime]:
    """``due_at`` must be one of the dates the series will create after its current one; returns those."""
    if series.basis == Basis.completion:
        raise InvalidInput(
            f"{field}: a series with basis 'completion' has no dates ahead to skip or move (each follows "
            "the last completion); skip or move the current occurrence instead.",
            field=field,
        )
    planned = [due for due, _ in coming(series, current_due(series, current), now, MAX_LISTED).after]
    if due_at not in planned:
        shown = ", ".join(rfc3339(due) or "" for due in planned[:3]) or "none"
        raise InvalidInput(
            f"{field}: {rfc3339(due_at)} is not one of the series' next {MAX_LISTED} occurrences (the next "
            f"are {shown}); GET /v1/series/{series.id}/occurrences lists them.",
            field=field,
        )
    return planned


def leave_out(series: Series, due_at: datetime) -> None:
    """The series will not create ``due_at``: an RDATE goes, a date of the rule becomes an EXDATE."""
    if due_at in series.rdates:
        series.rdates = [moment for moment in series.rdates if moment != due_at]
        return
    if len(series.exdates) >= MAX_EXCEPTIONS:
        raise Conflict(
            f"due_at: the series already leaves out {MAX_EXCEPTIONS} dates, the most it keeps; change its "
            "rule instead (PATCH /v1/tasks/{id} with recurrence on the current occurrence).",
            field="due_at",
        )
    series.exdates = sorted([*series.exdates, due_at])


def to_instant(moment: datetime, timezone: str) -> datetime:
    """A time as a person gives it: wall time in the series' zone when it has no offset."""
    return instant_of(moment, zone_of(timezone))


def add_date(series: Series, current: Task, to: datetime, now: datetime, planned: list[datetime]) -> datetime:
    """``to`` (wall time in the series' zone when naive) joins the series as an RDATE, unless it is one of
    the ``planned`` dates already; returns its instant."""
    moment = to_instant(to, series.timezone)
    floor = max(current_due(series, current), now)
    if moment <= floor:
        raise InvalidInput(
            f"to: {rfc3339(moment)} is not after the current occurrence and now ({rfc3339(floor)}); a date "
            "ahead can only move to a later time than that. To move the current one, give its due_at.",
            field="to",
        )
    if moment in planned:
        raise InvalidInput(
            f"to: {rfc3339(moment)} is already an occurrence of this series; skip the date instead.",
            field="to",
        )
    if len(series.rdates) >= MAX_EXCEPTIONS:
        raise Conflict(
            f"to: the series already has {MAX_EXCEPTIONS} dates beside its rule, the most it keeps.",
            field="to",
        )
    series.rdates = sorted([*series.rdates, moment])
    return moment
