"""What is coming in a series: its current occurrence and the ones its
workflow will create after it, from the same engine and the same rows, so
what the list shows is what will be created (if each is done when due)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlmodel import Field, SQLModel

from todos.core.fields import rfc3339
from todos.series import recurrence
from todos.series.changes import recurrence_of
from todos.series.models import Basis, Series

# Occurrences one request may list.
MAX_LISTED = 100


class OccurrencePublic(SQLModel):
    due_at: str = Field(schema_extra={"examples": ["2026-12-04T14:00:00Z"]})
    status: Literal["current", "planned", "moved"] = Field(
        description="`current`: the task to do now; `planned`: a date the rule gives; `moved`: a date moved "
        "(or added) by hand, an RDATE."
    )
    index: int = Field(description="The task number it has or will have in the series (#1 is the first).")


class OccurrencesPublic(SQLModel):
    series_id: str
    occurrences: list[OccurrencePublic]
    skipped: list[str] = Field(
        description="Dates the rule gives in the listed window that will not be created (EXDATEs): skipped "
        "or moved ahead of time."
    )


@dataclass(frozen=True)
class Coming:
    """The current occurrence (its due time, on or off its slot) and those after it: (instant, rule index)."""

    current_due: datetime
    after: list[tuple[datetime, int]]


def coming(series: Series, current_due: datetime, now: datetime, limit: int) -> Coming:
    """The next ``limit`` occurrences after the current one, each assumed done when due (a "completion"
    series has no other way to have dates ahead)."""
    rec = recurrence_of(series)
    if series.basis == Basis.completion:
        listed: list[tuple[datetime, int]] = []
        due, index = series.anchor_at, series.rule_index
        while len(listed) < limit and (
            step := recurrence.next_occurrence(
                rec, current_due=due, current_index=index, now=due, completed_at=max(due, current_due)
            )
        ):
            listed.append(step)
            due, index = step
        return Coming(current_due, listed)
    # As the workflow steps: after the slot, the moved due time and now (missed dates are passed over).
    after = max(series.anchor_at, current_due, now)
    planned = recurrence.upcoming(
        rec,
        anchor=series.anchor_at,
        anchor_index=series.rule_index,
        after=after,
        limit=limit,
        budget=recurrence.Budget(),
    )
    return Coming(current_due, planned)


def occurrences_public(series: Series, plan: Coming) -> OccurrencesPublic:
    rdates = set(series.rdates)
    listed = [
        OccurrencePublic(
            due_at=rfc3339(plan.current_due) or "", status="current", index=series.occurrence_index
        )
    ]
    listed += [
        OccurrencePublic(
            due_at=rfc3339(due) or "",
            status="moved" if due in rdates else "planned",
            index=series.occurrence_index + number,
        )
        for number, (due, _) in enumerate(plan.after, start=1)
    ]
    end = plan.after[-1][0] if plan.after else None
    skipped = [
        rfc3339(moment) or ""
        for moment in series.exdates
        if moment > plan.current_due and (end is None or moment < end)
    ]
    return OccurrencesPublic(series_id=str(series.id), occurrences=listed, skipped=skipped)
