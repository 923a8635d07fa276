"""Expansion: wall time in the series' zone, and a rule made independent of its DTSTART so that dateutil
can expand it from any period of the series (see `Engine`)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import MAXYEAR, UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from dateutil.rrule import (
    DAILY,
    HOURLY,
    MINUTELY,
    MONTHLY,
    SECONDLY,
    WEEKLY,
    YEARLY,
    rrule,
    weekday,
    weekdays,
)

from todos.series.recurrence.budget import Budget, BudgetExceeded, budgeted_rrule
from todos.series.recurrence.rules import (
    CALENDAR_CYCLE_YEARS,
    HORIZON_YEARS,
    Recurrence,
    RecurrenceError,
    Rule,
    parse_cached,
)

# ----------------------------------------------------------------------------------------------------
# Time zones and wall time


@functools.lru_cache(maxsize=1)
def _zone_names_by_folded_case() -> dict[str, str]:
    return {name.casefold(): name for name in available_timezones()}


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        canonical = _zone_names_by_folded_case().get(name.strip().casefold())
        if canonical is not None:
            return ZoneInfo(canonical)
        raise RecurrenceError(
            "timezone",
            "UNKNOWN_TIMEZONE",
            f"recurrence.timezone: {name!r} is not a known IANA time zone; use a name like 'Europe/Paris', "
            "'America/New_York' or 'UTC'.",
        ) from None


def to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    # fold=0 is both rules at once: a gap time uses the offset from before the gap (02:30 -> 03:30 after it)
    # and an ambiguous time takes its first instance.
    return wall.replace(tzinfo=zone).astimezone(UTC)


def instant_of(moment: datetime, zone: ZoneInfo) -> datetime:
    """A time as a person gives it: wall time in ``zone`` when it has no offset, else the instant it names."""
    return to_utc(moment, zone) if moment.tzinfo is None else moment.astimezone(UTC)


def to_wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _earliest_wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The earliest wall time that maps to ``instant``.

    A wall time in a spring-forward gap (02:30) maps to the same instant as the real wall time one gap later
    (03:30), so searching from the plain wall reading could start after the occurrence that produced it.
    """
    wall = to_wall(instant, zone)
    with_earlier_offset = to_wall(instant - timedelta(days=1), zone) + timedelta(days=1)
    if with_earlier_offset < wall and to_utc(with_earlier_offset, zone) == instant:
        return with_earlier_offset
    return wall


def require_aware(**values: datetime) -> None:
    for name, value in values.items():
        if value.tzinfo is None:
            raise ValueError(f"{name} must be a timezone-aware datetime")


def _years_later(wall: datetime, years: int) -> datetime | None:
    """``wall`` moved by whole 400-year cycles (so Feb 29 stays valid); None past the end of year 9999.

    None is right for a bound: dateutil stops at the end of year 9999 anyway.
    """
    return wall.replace(year=wall.year + years) if wall.year + years <= MAXYEAR else None


# ----------------------------------------------------------------------------------------------------
# Expansion


def pin_times(rule: Rule, wall: datetime) -> Rule:
    """Write out the time-of-day parts that RFC 5545 (and dateutil) take from DTSTART when they are absent."""
    return replace(
        rule,
        byhour=rule.byhour or ((wall.hour,) if rule.freq < HOURLY else ()),
        byminute=rule.byminute or ((wall.minute,) if rule.freq < MINUTELY else ()),
        bysecond=rule.bysecond or ((wall.second,) if rule.freq < SECONDLY else ()),
    )


def _pin_days(rule: Rule, wall: datetime) -> Rule:
    """Write out the day parts that RFC 5545 (and dateutil, with this very condition) take from DTSTART."""
    if rule.byweekno or rule.byyearday or rule.bymonthday or rule.byday:
        return rule
    if rule.freq == YEARLY:
        return replace(rule, bymonth=rule.bymonth or (wall.month,), bymonthday=(wall.day,))
    if rule.freq == MONTHLY:
        return replace(rule, bymonthday=(wall.day,))
    if rule.freq == WEEKLY:
        return replace(rule, byday=((wall.weekday(), 0),))
    return rule


def _period_floor(freq: int, wall: datetime, wkst: int) -> datetime:
    if freq == YEARLY:
        return datetime(wall.year, 1, 1)
    if freq == MONTHLY:
        return datetime(wall.year, wall.month, 1)
    if freq == WEEKLY:
        return datetime.combine(wall.date() - timedelta(days=(wall.weekday() - wkst) % 7), time())
    if freq == DAILY:
        return datetime.combine(wall.date(), time())
    if freq == HOURLY:
        return wall.replace(minute=0, second=0, microsecond=0)
    if freq == MINUTELY:
        return wall.replace(second=0, microsecond=0)
    return wall.replace(microsecond=0)


_PERIOD_LENGTHS = {
    WEEKLY: timedelta(weeks=1),
    DAILY: timedelta(days=1),
    HOURLY: timedelta(hours=1),
    MINUTELY: timedelta(minutes=1),
    SECONDLY: timedelta(seconds=1),
}


def _periods_between(freq: int, first: datetime, later: datetime) -> int:
    if freq == YEARLY:
        return later.year - first.year
    if freq == MONTHLY:
        return (later.year - first.year) * 12 + later.month - first.month
    return (later - first) // _PERIOD_LENGTHS[freq]


def _shift_periods(freq: int, start: datetime, periods: int) -> datetime:
    if freq == YEARLY:
        return start.replace(year=start.year + periods)
    if freq == MONTHLY:
        year, month = divmod(start.year * 12 + start.month - 1 + periods, 12)
        return start.replace(year=year, month=month + 1)
    return start + periods * _PERIOD_LENGTHS[freq]


@dataclass(frozen=True)
class Engine:
    """A rule made independent of its DTSTART, so it can be expanded from any period of the series.

    dateutil uses DTSTART for four things: defaults for absent BY parts, the INTERVAL phase, the first
    period's contents, and the cut-off (occurrences before DTSTART are dropped). Defaults are pinned
    explicitly here; expansion always starts at the beginning of a period that lies on the series' INTERVAL
    phase, so every period dateutil sees is complete (BYSETPOS picks from the whole period, as it would when
    walking from the start); and the cut-off is applied here, on instants. With that, expanding from the
    period that holds occurrence #k gives exactly the occurrences the walk from the series start gives, for
    every FREQ and BY combination.
    """

    rule: Rule  # defaults pinned; until is an aware instant
    zone: ZoneInfo
    start_wall: datetime  # decides the defaults and the INTERVAL phase
    start: datetime  # instant of start_wall: nothing before it belongs to the series
    byweekday: tuple[weekday, ...]
    # dateutil compares UNTIL with wall times; a bound a little past the wall reading of UNTIL lets it stop,
    # and the exact comparison happens on instants in stream.
    wall_bound: datetime | None
    # What dateutil expands: ``rule`` itself, or the same occurrences as FREQ=YEARLY (see _as_yearly).
    expansion: Rule

    def expand_from(
        self, wall: datetime, shift_years: int = 0, budget: Budget | None = None
    ) -> Iterator[datetime]:
        """Wall times from the start of the on-phase period holding ``wall``, computed in a calendar moved
        ``shift_years`` (whole 400-year cycles) later and moved back; dateutil's work is charged to
        ``budget`` if there is one."""
        rule = self.expansion
        if rule is self.rule:
            first = _period_floor(rule.freq, self.start_wall, rule.wkst)
            offset = _periods_between(rule.freq, first, _period_floor(rule.freq, wall, rule.wkst))
            start = _shift_periods(rule.freq, first, offset // rule.interval * rule.interval)
        else:
            # Every year is on phase and nothing picks among a period's days, so dateutil may skip the days
            # before ``wall`` itself (without producing them, which is what costs).
            start = wall
        dtstart = start.replace(year=start.year + shift_years)
        bound = None if self.wall_bound is None else _years_later(self.wall_bound, shift_years)
        arguments: dict[str, Any] = {
            "freq": rule.freq,
            "dtstart": dtstart,
            "interval": rule.interval,
            "wkst": rule.wkst,
            "until": bound,
            "bymonth": rule.bymonth or None,
            "byweekno": rule.byweekno or None,
            "byyearday": rule.byyearday or None,
            "bymonthday": rule.bymonthday or None,
            "byweekday": self.byweekday or None,
            "byhour": rule.byhour or None,
            "byminute": rule.byminute or None,
            "bysecond": rule.bysecond or None,
            "bysetpos": rule.bysetpos or None,
        }
        try:
            expanded = rrule(**arguments) if budget is None else budgeted_rrule(budget, **arguments)
            for shifted in expanded:
                yield shifted.replace(year=shifted.year - shift_years)
        except ValueError:
            # dateutil's way of saying "nothing more": BY values that the INTERVAL can never reach (HOURLY and
            # finer), or a week running past the end of year 9999.
            return
        except BudgetExceeded as spent:
            if spent.reached is not None:
                spent.reached -= shift_years
            raise


def build_engine(rule: Rule, zone: ZoneInfo, start_wall: datetime) -> Engine:
    start_wall = start_wall.replace(microsecond=0)
    until = rule.until
    if until is not None and until.tzinfo is None:
        until = to_utc(until, zone)
    pinned = replace(_pin_days(pin_times(rule, start_wall), start_wall), until=until)
    return Engine(
        expansion=_as_yearly(pinned) or pinned,
        rule=pinned,
        zone=zone,
        start_wall=start_wall,
        start=to_utc(start_wall, zone),
        byweekday=tuple(
            weekdays[day](ordinal) if ordinal else weekdays[day] for day, ordinal in pinned.byday
        ),
        wall_bound=None
        if until is None or until.year >= MAXYEAR
        else to_wall(until, zone) + timedelta(days=2),
    )


def _as_yearly(rule: Rule) -> Rule | None:
    """The same rule as FREQ=YEARLY, for a rule whose filters leave most of its periods empty, else None.

    A DAILY rule for the Mondays that are February 29 runs dateutil's loop once per day, about a million
    times for 100 occurrences; as YEARLY it runs once per year over 366 days, some 20 times cheaper per day.
    That makes odd-but-real encodings (FREQ=DAILY;BYMONTH=12;BYMONTHDAY=25) cost what their YEARLY form does.
    Only rules with a filter coarser than their period (BYMONTH; BYMONTHDAY or BYYEARDAY for DAILY and HOURLY;
    BYMONTHDAY with BYDAY for MONTHLY) qualify: scanning a whole year first costs some 20 us, more than a
    weekly or monthly rule that fills its periods spends to reach its next occurrence.

    It is exact because dateutil applies every BY day part as a filter on the days of a period, whatever the
    FREQ, and the defaults RFC 5545 takes from DTSTART are pinned already; what differs between FREQs is only
    the phase (none with INTERVAL=1), what BYSETPOS and numbered weekdays count within (excluded), and the
    times of day (written out: HOURLY gets every hour). A day part must be present, or dateutil would take
    the day of the year from DTSTART. HOURLY with several minutes or seconds, MINUTELY and SECONDLY are
    left alone: their time of day set would be large.
    """
    if rule.freq == MONTHLY:
        sparse = bool(rule.bymonth or (rule.bymonthday and rule.byday))
    elif rule.freq == WEEKLY:
        sparse = bool(rule.bymonth)
    else:
        sparse = bool(rule.bymonth or rule.bymonthday or rule.byyearday)
    has_day_part = rule.bymonthday or rule.byday or rule.byyearday or rule.byweekno
    numbered = any(ordinal for _, ordinal in rule.byday)
    if rule.freq in (YEARLY, MINUTELY, SECONDLY) or rule.interval != 1 or rule.bysetpos or numbered:
        return None
    if not (sparse and has_day_part):
        return None
    if rule.freq == HOURLY:
        if len(rule.byminute) != 1 or len(rule.bysecond) != 1:
            return None
        return replace(rule, freq=YEARLY, byhour=rule.byhour or tuple(range(24)))
    return replace(rule, freq=YEARLY)


@functools.lru_cache(maxsize=1024)
def cached_engine(rule: str, timezone: str, start_wall: datetime) -> Engine:
    return build_engine(parse_cached(rule), zone_of(timezone), start_wall)


def engine_for(rec: Recurrence) -> Engine:
    return cached_engine(rec.rule, rec.timezone, to_wall(rec.dtstart, zone_of(rec.timezone)))


def stream(
    engine: Engine, cutoff: datetime, *, bounded: bool = False, budget: Budget | None = None
) -> Iterator[tuple[datetime, datetime]]:
    """(wall time, instant) of the series' occurrences at or after ``cutoff``, in order.

    The cost is one period of expansion before ``cutoff`` plus the occurrences consumed. ``bounded`` caps
    the search at 100 to 500 years ahead, for rules that may yield nothing at all.
    """
    cutoff = max(cutoff, engine.start)
    until = engine.rule.until
    from_wall = _earliest_wall(cutoff, engine.zone)
    shift_years = 0
    if bounded:
        # dateutil only looks at UNTIL when a period produces something, so a rule that never matches runs
        # period by period up to year 9999 - seconds for a daily rule. Its one hard stop is the end of year
        # 9999, so compute in a copy of the calendar moved whole 400-year cycles later, which ends
        # HORIZON_YEARS to HORIZON_YEARS + 400 years after the cut-off.
        room = MAXYEAR + 1 - HORIZON_YEARS - from_wall.year
        shift_years = max(0, room // CALENDAR_CYCLE_YEARS * CALENDAR_CYCLE_YEARS)
    for wall in engine.expand_from(from_wall, shift_years, budget):
        instant = to_utc(wall, engine.zone)
        if instant < cutoff:
            continue
        if until is not None and instant > until:
            return
        yield wall, instant


def indexed(
    engine: Engine,
    *,
    anchor: datetime,
    anchor_index: int,
    anchor_is_occurrence: bool,
    budget: Budget | None = None,
) -> Iterator[tuple[datetime, int]]:
    """Occurrences after ``anchor`` with their 1-based index, given that the anchor has ``anchor_index``.

    Two wall times can share an instant (02:30 in a spring-forward gap and 03:30 both become 03:30), and COUNT
    counts both, as dateutil does; only the first one at ``anchor`` is taken to be the anchor itself.
    """
    index = anchor_index
    count = engine.rule.count
    for position, (_, instant) in enumerate(stream(engine, anchor, budget=budget)):
        if position == 0 and anchor_is_occurrence and instant == anchor:
            continue
        index += 1
        if count is not None and index > count:
            return
        yield instant, index
