"""A person's calendar as RFC 5545 text: each pending one-off task with a
due time, and each live series as one component (its rule, EXDATEs and
RDATEs from the series' row, so calendar apps expand the dates the series'
workflow creates). VTODOs, or VEVENTs for apps that ignore to-dos. Pure."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from todos.calendar.ics import Component, document, duration, local, text, utc, vtimezone
from todos.reminders.models import ReminderSpec
from todos.series.models import Basis, Series, SeriesStatus
from todos.series.recurrence.engine import to_utc, to_wall, zone_of
from todos.series.recurrence.rules import format_rule, parse_cached
from todos.tasks.models import Task

PRODID = "-//todo-workflows//calendar feed//EN"
# How far ahead each VTIMEZONE spells out its zone's changes.
ZONE_YEARS_AHEAD = 10
_PRIORITY = {"high": 1, "medium": 5, "low": 9}


@dataclass(frozen=True)
class Entry:
    """One component: a task on its own, or a series (with its current task)."""

    task: Task
    series: Series | None = None


def calendar(entries: Sequence[Entry], *, as_events: bool, now: datetime) -> str:
    root = Component("VCALENDAR").add("VERSION", "2.0").add("PRODID", PRODID).add("CALSCALE", "GREGORIAN")
    root.add("X-WR-CALNAME", "Todos")
    zones: dict[str, int] = {}
    components = []
    for entry in entries:
        component = _component(entry, as_events, now)
        if entry.series is not None and _repeats(entry.series):
            start_year = entry.series.dtstart.year
            zones[entry.series.timezone] = min(zones.get(entry.series.timezone, start_year), start_year)
        components.append(component)
    for name, first_year in sorted(zones.items()):
        root.children.append(vtimezone(zone_of(name), first_year - 1, now.year + ZONE_YEARS_AHEAD))
    root.children += components
    return document(root)


def _repeats(series: Series) -> bool:
    """Whether the rule says the dates ahead: an active `schedule` series (a paused one creates
    nothing until resumed, and a `completion` one counts from when each is done)."""
    return series.status == SeriesStatus.active and series.basis == Basis.schedule


def _component(entry: Entry, as_events: bool, now: datetime) -> Component:
    task, series = entry.task, entry.series
    assert task.due_at is not None
    component = Component("VEVENT" if as_events else "VTODO")
    uid = f"series-{series.id}" if series is not None else f"task-{task.id}"
    component.add("UID", f"{uid}@todo-workflows").add("DTSTAMP", utc(now))
    component.add(
        "LAST-MODIFIED", utc(max(task.updated_at, series.updated_at) if series else task.updated_at)
    )
    component.add("SUMMARY", text(task.title))
    if task.description:
        component.add("DESCRIPTION", text(task.description))
    if task.tags:
        component.add("CATEGORIES", ",".join(text(tag) for tag in task.tags))
    component.add("PRIORITY", str(_PRIORITY.get(str(task.priority), 5)))
    if not as_events:
        component.add("STATUS", "NEEDS-ACTION")
    has_due = False
    if series is not None and _repeats(series):
        _recurrence(component, series, task)
    elif as_events:
        component.add("DTSTART", utc(task.due_at))
    else:
        component.add("DUE", utc(task.due_at))
        has_due = True
    component.children += [_alarm(spec, task.title, counts_from_due=has_due) for spec in task.reminders]
    return component


def _recurrence(component: Component, series: Series, current: Task) -> None:
    """DTSTART at the series' first occurrence (its rule's COUNT and INTERVAL count from there), the
    rule with UNTIL as an instant, and the exceptions; a current occurrence moved off its slot is
    the slot left out and its due time added."""
    zone = zone_of(series.timezone)
    rule = parse_cached(series.rule)
    if rule.until is not None and rule.until.tzinfo is None:
        rule = dataclasses.replace(rule, until=to_utc(rule.until, zone))
    exdates, rdates = list(series.exdates), list(series.rdates)
    if current.due_at is not None and current.due_at != series.anchor_at:
        if series.anchor_at in rdates:
            rdates.remove(series.anchor_at)
        else:
            exdates.append(series.anchor_at)
        rdates.append(current.due_at)
    zone_param = {"tzid": zone.key}
    component.add("DTSTART", to_wall(series.dtstart, zone).strftime("%Y%m%dT%H%M%S"), **zone_param)
    component.add("RRULE", format_rule(rule))
    if exdates:
        component.add("EXDATE", ",".join(local(moment, zone) for moment in sorted(exdates)), **zone_param)
    if rdates:
        component.add("RDATE", ",".join(local(moment, zone) for moment in sorted(rdates)), **zone_param)


def _alarm(stored: dict[str, Any], title: str, *, counts_from_due: bool) -> Component:
    """`counts_from_due`: the component's due time is its DUE (a to-do's END), not its DTSTART."""
    spec = ReminderSpec.model_validate(stored)
    alarm = Component("VALARM").add("ACTION", "DISPLAY").add("DESCRIPTION", text(title))
    if spec.at is not None:
        return alarm.add("TRIGGER", utc(spec.at), value="DATE-TIME")
    before = duration(-(spec.before or timedelta(0)))
    return alarm.add("TRIGGER", before, related="END") if counts_from_due else alarm.add("TRIGGER", before)
