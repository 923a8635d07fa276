"""Recurrence engine for recurring todos.

Pure functions over RFC 5545 recurrence rules: no I/O, no clock (callers pass "now"), no Dapr, no database.

Occurrences are computed as wall-clock times in the series' IANA zone and returned as aware UTC instants,
so a 09:00 America/New_York series is 14:00Z in winter and 13:00Z in summer. A wall time inside a
spring-forward gap moves forward by the gap (02:30 -> 03:30) and an ambiguous fall-back wall time takes its
first instance; both are exactly what zoneinfo does for ``fold=0``.

dateutil expands the rule, but always from a *period start* chosen by this module (see ``_Engine``) instead of
the user's start, which buys two things:

* ``occurrence_after`` can re-anchor at any occurrence in O(one period) instead of walking from the series
  start, for every rule shape: the work no longer grows with the occurrence index.
* A weekly BYSETPOS rule selects among the whole week, as RFC 5545 says. dateutil cuts the first week short at
  DTSTART, so "FREQ=WEEKLY;BYDAY=MO,FR;BYSETPOS=1" started on a Wednesday would give that Friday; here it
  gives the next Monday.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import MAXYEAR, UTC, date, datetime, time, timedelta
from typing import Any, Literal
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

from todos.series.recurrence_budget import Budget, BudgetExceeded, budgeted_rrule

__all__ = [
    "Basis",
    "Budget",
    "Recurrence",
    "RecurrenceError",
    "describe",
    "next_occurrence",
    "occurrence_after",
    "occurrences",
    "parse",
    "preview",
]

Basis = Literal["schedule", "completion"]
_Freq = Literal[0, 1, 2, 3, 4, 5, 6]

_BASES: dict[str, Basis] = {"schedule": "schedule", "completion": "completion"}
_FREQS: dict[str, _Freq] = {
    "YEARLY": YEARLY,
    "MONTHLY": MONTHLY,
    "WEEKLY": WEEKLY,
    "DAILY": DAILY,
    "HOURLY": HOURLY,
    "MINUTELY": MINUTELY,
    "SECONDLY": SECONDLY,
}
_FREQ_NAMES: dict[int, str] = {value: name for name, value in _FREQS.items()}
_WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_WORKWEEK = (0, 1, 2, 3, 4)

# A rule with nothing in the next century is useless for a todo list. Searches that may find nothing (parse()
# validation, completion restarts) look at least this far ahead; see _stream(bounded=True) for the mechanics.
_HORIZON_YEARS = 100
# The Gregorian calendar (leap years, weekdays, ISO weeks) repeats exactly every 400 years.
_CALENDAR_CYCLE_YEARS = 400
# parse() measures the smallest gap over this many occurrences.
_GAP_SAMPLE = 50
_MAX_INTERVAL = 10_000
_MAX_RULE_LENGTH = 1_000
_RULE_HINT = "try 'daily', 'every 2 weeks' or 'FREQ=WEEKLY;BYDAY=MO,WE'"


class RecurrenceError(ValueError):
    """A recurrence request field is invalid; ``field`` and ``code`` are stable for API clients."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.code = code


@dataclass(frozen=True)
class Recurrence:
    rule: str
    timezone: str
    dtstart: datetime
    basis: Basis = "schedule"

    def __post_init__(self) -> None:
        if self.dtstart.tzinfo is None:
            raise ValueError("Recurrence.dtstart must be timezone-aware (UTC)")


# ----------------------------------------------------------------------------------------------------
# Rule model and text form


@dataclass(frozen=True)
class _Rule:
    freq: _Freq
    interval: int = 1
    count: int | None = None
    # Naive means wall time in the series zone (as typed by a user); aware means an instant.
    until: datetime | None = None
    bymonth: tuple[int, ...] = ()
    byweekno: tuple[int, ...] = ()
    byyearday: tuple[int, ...] = ()
    bymonthday: tuple[int, ...] = ()
    byday: tuple[tuple[int, int], ...] = ()  # (weekday 0=Monday, ordinal or 0 for "every")
    byhour: tuple[int, ...] = ()
    byminute: tuple[int, ...] = ()
    bysecond: tuple[int, ...] = ()
    bysetpos: tuple[int, ...] = ()
    wkst: int = 0


# key -> (smallest, largest, signed): signed parts count from the end with negatives, so 0 is excluded.
_INT_PARTS: dict[str, tuple[int, int, bool]] = {
    "BYSECOND": (0, 59, False),
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTH": (1, 12, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYSETPOS": (1, 366, True),
}
_KNOWN_PARTS = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "WKST", *_INT_PARTS}
_BYDAY_RE = re.compile(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)")
_DIGITS_RE = re.compile(r"\d{1,9}", re.ASCII)
_UNTIL_RE = re.compile(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z)?)?")
_PATTERN_EVERY_RE = re.compile(r"every (?:(\d+) |(other) )?(day|week|month|year)s?")
_PATTERNS: dict[str, _Rule] = {
    "daily": _Rule(DAILY),
    "weekdays": _Rule(WEEKLY, byday=tuple((day, 0) for day in _WORKWEEK)),
    "every weekday": _Rule(WEEKLY, byday=tuple((day, 0) for day in _WORKWEEK)),
    "weekly": _Rule(WEEKLY),
    "monthly": _Rule(MONTHLY),
    "yearly": _Rule(YEARLY),
    "annually": _Rule(YEARLY),
    "last day of month": _Rule(MONTHLY, bymonthday=(-1,)),
    "last day of the month": _Rule(MONTHLY, bymonthday=(-1,)),
    "every last day of the month": _Rule(MONTHLY, bymonthday=(-1,)),
}
_PATTERN_UNITS: dict[str, _Freq] = {"day": DAILY, "week": WEEKLY, "month": MONTHLY, "year": YEARLY}


def _shown(text: str) -> str:
    """The user's text, quoted and cut short enough for an error message."""
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _invalid_rule(text: str, detail: str) -> RecurrenceError:
    return RecurrenceError(
        "rule",
        "INVALID_RECURRENCE_RULE",
        f"recurrence.rule: {_shown(text)} is not a valid RRULE or pattern ({detail}); {_RULE_HINT}.",
    )


def _parse_rule_text(text: str) -> _Rule:
    if len(text) > _MAX_RULE_LENGTH:
        raise _invalid_rule(text, f"it is longer than {_MAX_RULE_LENGTH} characters")
    pattern = " ".join(text.lower().split())
    if pattern in _PATTERNS:
        return _PATTERNS[pattern]
    every = _PATTERN_EVERY_RE.fullmatch(pattern)
    if every:
        number, other, unit = every.groups()
        interval = 2 if other else int(number or 1)
        if not 1 <= interval <= _MAX_INTERVAL:
            raise _invalid_rule(text, f"the number must be between 1 and {_MAX_INTERVAL}")
        return _Rule(_PATTERN_UNITS[unit], interval=interval)
    if "=" not in text:
        raise _invalid_rule(text, "unknown pattern")
    return _parse_rrule(text)


def _parse_rrule(text: str) -> _Rule:
    body = text.strip().upper()
    if "DTSTART" in body:
        raise RecurrenceError(
            "rule",
            "INVALID_RECURRENCE_RULE",
            "recurrence.rule: the rule must not contain DTSTART; pass the start as recurrence.dtstart "
            "and keep only the RRULE part, e.g. 'FREQ=DAILY'.",
        )
    if "\n" in body or "\r" in body:
        raise _invalid_rule(text, "only a single RRULE line is supported")
    body = body.removeprefix("RRULE:")
    parts: dict[str, str] = {}
    for item in body.split(";"):
        key, sep, value = (piece.strip() for piece in item.partition("="))
        if not key and not sep:
            continue  # tolerate "FREQ=DAILY;" and ";;"
        if not key or not sep or not value:
            raise _invalid_rule(text, f"{item.strip()!r} is not KEY=VALUE")
        if key not in _KNOWN_PARTS:
            raise _invalid_rule(text, f"{key} is not a supported RRULE part")
        if key in parts:
            raise _invalid_rule(text, f"{key} appears twice")
        parts[key] = value

    if "FREQ" not in parts:
        raise _invalid_rule(text, "FREQ is missing")
    freq = _FREQS.get(parts["FREQ"])
    if freq is None:
        raise _invalid_rule(text, f"FREQ must be one of {', '.join(_FREQS)}")
    if "COUNT" in parts and "UNTIL" in parts:
        raise _invalid_rule(text, "use COUNT or UNTIL, not both")

    ints = {key: _int_list(text, key, parts[key]) for key in _INT_PARTS if key in parts}
    byday = _byday(text, parts["BYDAY"]) if "BYDAY" in parts else ()
    rule = _Rule(
        freq,
        interval=_positive(text, "INTERVAL", parts["INTERVAL"], _MAX_INTERVAL) if "INTERVAL" in parts else 1,
        count=_positive(text, "COUNT", parts["COUNT"], None) if "COUNT" in parts else None,
        until=_until(text, parts["UNTIL"]) if "UNTIL" in parts else None,
        bymonth=ints.get("BYMONTH", ()),
        byweekno=ints.get("BYWEEKNO", ()),
        byyearday=ints.get("BYYEARDAY", ()),
        bymonthday=ints.get("BYMONTHDAY", ()),
        byday=byday,
        byhour=ints.get("BYHOUR", ()),
        byminute=ints.get("BYMINUTE", ()),
        bysecond=ints.get("BYSECOND", ()),
        bysetpos=ints.get("BYSETPOS", ()),
        wkst=_weekday_code(text, "WKST", parts["WKST"]) if "WKST" in parts else 0,
    )
    _check_combinations(text, rule)
    return rule


def _positive(text: str, key: str, value: str, largest: int | None) -> int:
    if not _DIGITS_RE.fullmatch(value) or int(value) < 1 or (largest is not None and int(value) > largest):
        limit = f" up to {largest}" if largest is not None else ""
        raise _invalid_rule(text, f"{key} must be a positive whole number{limit}, got {value!r}")
    return int(value)


def _int_list(text: str, key: str, value: str) -> tuple[int, ...]:
    smallest, largest, signed = _INT_PARTS[key]
    numbers: set[int] = set()
    for raw in value.split(","):
        raw = raw.strip()
        digits = raw[1:] if signed and raw.startswith(("+", "-")) else raw
        number = int(raw) if _DIGITS_RE.fullmatch(digits) else None
        if number is None or not smallest <= abs(number) <= largest:
            allowed = f"{smallest}..{largest}" + (f" or -{largest}..-{smallest}" if signed else "")
            raise _invalid_rule(text, f"{key} values must be in {allowed}, got {raw!r}")
        numbers.add(number)
    return tuple(sorted(numbers))


def _weekday_code(text: str, key: str, value: str) -> int:
    if value not in _WEEKDAY_CODES:
        raise _invalid_rule(text, f"{key} must be one of {', '.join(_WEEKDAY_CODES)}, got {value!r}")
    return _WEEKDAY_CODES.index(value)


def _byday(text: str, value: str) -> tuple[tuple[int, int], ...]:
    days: set[tuple[int, int]] = set()
    for raw in value.split(","):
        match = _BYDAY_RE.fullmatch(raw.strip())
        ordinal = int(match.group(1)) if match and match.group(1) else 0
        if match is None or (match.group(1) and not 1 <= abs(ordinal) <= 53):
            raise _invalid_rule(text, f"BYDAY values look like MO, 2TU or -1FR, got {raw.strip()!r}")
        days.add((_WEEKDAY_CODES.index(match.group(2)), ordinal))
    return tuple(sorted(days))


def _until(text: str, value: str) -> datetime:
    match = _UNTIL_RE.fullmatch(value)
    if match is None:
        raise _invalid_rule(text, f"UNTIL must look like 20270131 or 20270131T235959Z, got {value!r}")
    year, month, day, hour, minute, second, utc = match.groups()
    try:
        if hour is None:
            # A bare date means "through that day": it must not drop an occurrence later on the same day.
            return datetime.combine(date(int(year), int(month), int(day)), time(23, 59, 59))
        until = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    except ValueError as exc:
        raise _invalid_rule(text, f"UNTIL {value!r} is not a real date and time") from exc
    return until.replace(tzinfo=UTC) if utc else until


def _check_combinations(text: str, rule: _Rule) -> None:
    """RFC 5545 section 3.3.10 'MUST NOT' combinations, which dateutil would silently accept."""
    has_ordinals = any(ordinal for _, ordinal in rule.byday)
    if has_ordinals and rule.freq not in (MONTHLY, YEARLY):
        raise _invalid_rule(text, "BYDAY with a number like 2TU needs FREQ=MONTHLY or FREQ=YEARLY")
    if has_ordinals and rule.byweekno:
        raise _invalid_rule(text, "BYDAY with a number like 2TU cannot be combined with BYWEEKNO")
    # Within a month the number means "nth such weekday of the month", which stops at 5; dateutil even crashes
    # on larger ones there.
    if (rule.freq == MONTHLY or rule.bymonth) and any(abs(ordinal) > 5 for _, ordinal in rule.byday):
        raise _invalid_rule(text, "BYDAY numbers count weekdays within a month here, so they must be -5..5")
    if rule.byweekno and rule.freq != YEARLY:
        raise _invalid_rule(text, "BYWEEKNO needs FREQ=YEARLY")
    if rule.byyearday and rule.freq in (MONTHLY, WEEKLY, DAILY):
        raise _invalid_rule(text, "BYYEARDAY cannot be used with FREQ=MONTHLY, WEEKLY or DAILY")
    if rule.bymonthday and rule.freq == WEEKLY:
        raise _invalid_rule(text, "BYMONTHDAY cannot be used with FREQ=WEEKLY")
    others = (rule.bymonth, rule.byweekno, rule.byyearday, rule.bymonthday, rule.byday, rule.byhour)
    if rule.bysetpos and not any((*others, rule.byminute, rule.bysecond)):
        raise _invalid_rule(text, "BYSETPOS needs another BY part such as BYDAY to pick from")


def _format_rule(rule: _Rule) -> str:
    parts = [f"FREQ={_FREQ_NAMES[rule.freq]}"]
    if rule.interval != 1:
        parts.append(f"INTERVAL={rule.interval}")
    if rule.count is not None:
        parts.append(f"COUNT={rule.count}")
    if rule.until is not None:
        parts.append(f"UNTIL={rule.until.astimezone(UTC):%Y%m%dT%H%M%SZ}")
    lists = (
        ("BYMONTH", rule.bymonth),
        ("BYWEEKNO", rule.byweekno),
        ("BYYEARDAY", rule.byyearday),
        ("BYMONTHDAY", rule.bymonthday),
    )
    parts.extend(f"{key}={','.join(map(str, values))}" for key, values in lists if values)
    if rule.byday:
        parts.append(
            "BYDAY=" + ",".join(f"{ordinal or ''}{_WEEKDAY_CODES[day]}" for day, ordinal in rule.byday)
        )
    times = (("BYHOUR", rule.byhour), ("BYMINUTE", rule.byminute), ("BYSECOND", rule.bysecond))
    parts.extend(f"{key}={','.join(map(str, values))}" for key, values in times if values)
    if rule.bysetpos:
        parts.append(f"BYSETPOS={','.join(map(str, rule.bysetpos))}")
    if rule.wkst:
        parts.append(f"WKST={_WEEKDAY_CODES[rule.wkst]}")
    return ";".join(parts)


@functools.lru_cache(maxsize=1024)
def _parse_cached(text: str) -> _Rule:
    return _parse_rule_text(text)


# ----------------------------------------------------------------------------------------------------
# Time zones and wall time


@functools.lru_cache(maxsize=1)
def _zone_names_by_folded_case() -> dict[str, str]:
    return {name.casefold(): name for name in available_timezones()}


def _zone(name: str) -> ZoneInfo:
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


def _to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    # fold=0 is both rules at once: a gap time uses the offset from before the gap (02:30 -> 03:30 after it)
    # and an ambiguous time takes its first instance.
    return wall.replace(tzinfo=zone).astimezone(UTC)


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _earliest_wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The earliest wall time that maps to ``instant``.

    A wall time in a spring-forward gap (02:30) maps to the same instant as the real wall time one gap later
    (03:30), so searching from the plain wall reading could start after the occurrence that produced it.
    """
    wall = _wall(instant, zone)
    with_earlier_offset = _wall(instant - timedelta(days=1), zone) + timedelta(days=1)
    if with_earlier_offset < wall and _to_utc(with_earlier_offset, zone) == instant:
        return with_earlier_offset
    return wall


def _require_aware(**values: datetime) -> None:
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


def _pin_times(rule: _Rule, wall: datetime) -> _Rule:
    """Write out the time-of-day parts that RFC 5545 (and dateutil) take from DTSTART when they are absent."""
    return replace(
        rule,
        byhour=rule.byhour or ((wall.hour,) if rule.freq < HOURLY else ()),
        byminute=rule.byminute or ((wall.minute,) if rule.freq < MINUTELY else ()),
        bysecond=rule.bysecond or ((wall.second,) if rule.freq < SECONDLY else ()),
    )


def _pin_days(rule: _Rule, wall: datetime) -> _Rule:
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
class _Engine:
    """A rule made independent of its DTSTART, so it can be expanded from any period of the series.

    dateutil uses DTSTART for four things: defaults for absent BY parts, the INTERVAL phase, the first
    period's contents, and the cut-off (occurrences before DTSTART are dropped). Defaults are pinned
    explicitly here; expansion always starts at the beginning of a period that lies on the series' INTERVAL
    phase, so every period dateutil sees is complete (BYSETPOS picks from the whole period, as it would when
    walking from the start); and the cut-off is applied here, on instants. With that, expanding from the
    period that holds occurrence #k gives exactly the occurrences the walk from the series start gives, for
    every FREQ and BY combination.
    """

    rule: _Rule  # defaults pinned; until is an aware instant
    zone: ZoneInfo
    start_wall: datetime  # decides the defaults and the INTERVAL phase
    start: datetime  # instant of start_wall: nothing before it belongs to the series
    byweekday: tuple[weekday, ...]
    # dateutil compares UNTIL with wall times; a bound a little past the wall reading of UNTIL lets it stop,
    # and the exact comparison happens on instants in _stream.
    wall_bound: datetime | None
    # What dateutil expands: ``rule`` itself, or the same occurrences as FREQ=YEARLY (see _as_yearly).
    expansion: _Rule

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


def _build_engine(rule: _Rule, zone: ZoneInfo, start_wall: datetime) -> _Engine:
    start_wall = start_wall.replace(microsecond=0)
    until = rule.until
    if until is not None and until.tzinfo is None:
        until = _to_utc(until, zone)
    pinned = replace(_pin_days(_pin_times(rule, start_wall), start_wall), until=until)
    return _Engine(
        expansion=_as_yearly(pinned) or pinned,
        rule=pinned,
        zone=zone,
        start_wall=start_wall,
        start=_to_utc(start_wall, zone),
        byweekday=tuple(
            weekdays[day](ordinal) if ordinal else weekdays[day] for day, ordinal in pinned.byday
        ),
        wall_bound=None if until is None or until.year >= MAXYEAR else _wall(until, zone) + timedelta(days=2),
    )


def _as_yearly(rule: _Rule) -> _Rule | None:
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
def _engine(rule: str, timezone: str, start_wall: datetime) -> _Engine:
    return _build_engine(_parse_cached(rule), _zone(timezone), start_wall)


def _engine_for(rec: Recurrence) -> _Engine:
    return _engine(rec.rule, rec.timezone, _wall(rec.dtstart, _zone(rec.timezone)))


def _stream(
    engine: _Engine, cutoff: datetime, *, bounded: bool = False, budget: Budget | None = None
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
        # _HORIZON_YEARS to _HORIZON_YEARS + 400 years after the cut-off.
        room = MAXYEAR + 1 - _HORIZON_YEARS - from_wall.year
        shift_years = max(0, room // _CALENDAR_CYCLE_YEARS * _CALENDAR_CYCLE_YEARS)
    for wall in engine.expand_from(from_wall, shift_years, budget):
        instant = _to_utc(wall, engine.zone)
        if instant < cutoff:
            continue
        if until is not None and instant > until:
            return
        yield wall, instant


def _indexed(
    engine: _Engine,
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
    for position, (_, instant) in enumerate(_stream(engine, anchor, budget=budget)):
        if position == 0 and anchor_is_occurrence and instant == anchor:
            continue
        index += 1
        if count is not None and index > count:
            return
        yield instant, index


# ----------------------------------------------------------------------------------------------------
# Public API


def parse(
    rule: str,
    *,
    timezone: str = "UTC",
    dtstart: datetime,
    basis: str = "schedule",
    min_interval: timedelta = timedelta(hours=1),
    budget: Budget | None = None,
) -> Recurrence:
    """Validate a rule (RRULE text or a simple English pattern) and anchor it at its first occurrence.

    With a ``budget`` (request paths), a rule whose first occurrences take more expansion work than it has
    left is refused as RULE_TOO_SPARSE.
    """
    rec, _ = _parse(rule, timezone, dtstart, basis, min_interval, budget)
    return rec


def preview(
    rule: str,
    *,
    timezone: str = "UTC",
    dtstart: datetime,
    limit: int,
    min_interval: timedelta = timedelta(hours=1),
    budget: Budget | None = None,
) -> tuple[Recurrence, list[datetime]]:
    """``parse()`` and the rule's first ``limit`` occurrences, as ``occurrences()`` lists them.

    The occurrences parse() checks are the series' first ones, so the list continues after them instead of
    expanding them twice: a third less work for a preview of 100.
    """
    rec, sample = _parse(rule, timezone, dtstart, "schedule", min_interval, budget)
    listed: list[datetime] = []
    for _, instant in sample:
        # As occurrences() does: wall times in a DST gap can land on the instant of the next one.
        if not listed or instant > listed[-1]:
            listed.append(instant)
    count = _engine_for(rec).rule.count
    if len(listed) >= limit or (count is not None and len(sample) >= count):
        return rec, listed[: max(limit, 0)]
    try:
        _list_into(listed, rec, limit, listed[-1], budget)
    except BudgetExceeded as spent:
        raise _too_sparse(
            rule, f"to list {limit} occurrences", len(listed), spent, fewer_helps=True
        ) from None
    return rec, listed


def _parse(
    rule: str, timezone: str, dtstart: datetime, basis: str, min_interval: timedelta, budget: Budget | None
) -> tuple[Recurrence, list[tuple[datetime, datetime]]]:
    """parse(), and the first occurrences it checked (wall time, instant)."""
    basis_value = _BASES.get(basis.strip().lower())
    if basis_value is None:
        raise RecurrenceError(
            "basis",
            "INVALID_BASIS",
            f"recurrence.basis: {_shown(basis)} is not a valid basis; use 'schedule' or 'completion'.",
        )
    zone = _zone(timezone)
    parsed = _parse_rule_text(rule)
    start_wall = (_wall(dtstart, zone) if dtstart.tzinfo is not None else dtstart).replace(microsecond=0)
    engine = _build_engine(parsed, zone, start_wall)
    until = engine.rule.until
    if until is not None and until < engine.start:
        raise RecurrenceError(
            "dtstart",
            "UNTIL_BEFORE_DTSTART",
            f"recurrence.dtstart: the start {engine.start:%Y-%m-%dT%H:%M:%SZ} is after the rule's UNTIL "
            f"{until:%Y-%m-%dT%H:%M:%SZ}; start earlier or move UNTIL later.",
        )
    if parsed.freq in (MINUTELY, SECONDLY) and min_interval >= timedelta(minutes=1):
        raise _too_frequent(rule, f"FREQ={_FREQ_NAMES[parsed.freq]} repeats within minutes", min_interval)

    sample = _first_occurrences(engine, rule, budget)
    if not sample:
        raise _yields_nothing(rule, start_wall, timezone)
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(sample)]
    if gaps and min(gaps) < min_interval:
        raise _too_frequent(rule, f"it repeats as often as every {_duration(min(gaps))}", min_interval)

    first_wall, first = sample[0]
    # The stored start is an instant. If the first occurrence sits in a spring-forward gap, its instant reads
    # back as a different wall time, which would change the implied time of day: write the time out instead.
    # (For sub-daily rules with INTERVAL > 1 the phase then follows the shifted hour.)
    if _wall(first, zone) != first_wall:
        parsed = _pin_times(parsed, first_wall)
    rec = Recurrence(
        rule=_format_rule(replace(parsed, until=until)), timezone=zone.key, dtstart=first, basis=basis_value
    )
    return rec, sample


def _first_occurrences(engine: _Engine, rule: str, budget: Budget | None) -> list[tuple[datetime, datetime]]:
    count = engine.rule.count
    size = _GAP_SAMPLE if count is None else min(count, _GAP_SAMPLE)
    sample: list[tuple[datetime, datetime]] = []
    try:
        for found in _stream(engine, engine.start, bounded=True, budget=budget):
            sample.append(found)
            if len(sample) == size:
                break
    except BudgetExceeded as spent:
        if not sample and spent.reached and spent.reached >= engine.start_wall.year + _HORIZON_YEARS:
            raise _yields_nothing(rule, engine.start_wall, engine.zone.key) from None
        raise _too_sparse(rule, "to be checked", len(sample), spent) from None
    return sample


def _yields_nothing(rule: str, start_wall: datetime, timezone: str) -> RecurrenceError:
    return RecurrenceError(
        "rule",
        "RULE_YIELDS_NOTHING",
        f"recurrence.rule: {_shown(rule)} produces no occurrence in the {_HORIZON_YEARS} years from "
        f"{start_wall:%Y-%m-%d %H:%M} ({timezone}) on; check that the BYMONTH/BYMONTHDAY/BYDAY "
        "combination exists and that COUNT or UNTIL leaves room for it.",
    )


def _too_sparse(
    rule: str, purpose: str, found: int, spent: BudgetExceeded, *, fewer_helps: bool = False
) -> RecurrenceError:
    seen = f"only {found} occurrence{'s' if found != 1 else ''}" if found else "no occurrence"
    until = f" up to {spent.reached}" if spent.reached else ""
    fewer = ", or ask for fewer occurrences" if fewer_helps and found else ""
    return RecurrenceError(
        "rule",
        "RULE_TOO_SPARSE",
        f"recurrence.rule: {_shown(rule)} yields too rarely {purpose} ({seen}{until} within the work one "
        f"request may do); use a coarser FREQ or fewer BY filters{fewer}.",
    )


def _too_frequent(rule: str, why: str, min_interval: timedelta) -> RecurrenceError:
    return RecurrenceError(
        "rule",
        "RULE_TOO_FREQUENT",
        f"recurrence.rule: {_shown(rule)} is too frequent ({why}, the minimum gap is "
        f"{_duration(min_interval)}); use a coarser FREQ, a larger INTERVAL or fewer BYHOUR/BYMINUTE values.",
    )


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds and seconds % size == 0:
            amount = seconds // size
            return f"{amount} {unit}{'s' if amount != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def occurrences(
    rec: Recurrence, limit: int, *, after: datetime | None = None, budget: Budget | None = None
) -> list[datetime]:
    """Up to ``limit`` occurrences (aware UTC) strictly after ``after`` (or from #1), in increasing order.

    With a ``budget`` (request paths), running out of it before ``limit`` occurrences is RULE_TOO_SPARSE.
    """
    if after is not None:
        _require_aware(after=after)
    listed: list[datetime] = []
    try:
        _list_into(listed, rec, limit, after, budget)
    except BudgetExceeded as spent:
        raise _too_sparse(
            rec.rule, f"to list {limit} occurrences", len(listed), spent, fewer_helps=True
        ) from None
    return listed


def _list_into(
    listed: list[datetime], rec: Recurrence, limit: int, after: datetime | None, budget: Budget | None
) -> None:
    """Append the occurrences after ``after`` (or from #1) to ``listed`` until it holds ``limit``; what it
    appended stays there when the budget runs out."""
    engine = _engine_for(rec)
    if after is None or after < rec.dtstart or engine.rule.count is not None:
        # COUNT can only be honoured by knowing how many occurrences came before.
        instants: Iterator[datetime] = (
            t
            for t, _ in _indexed(
                engine, anchor=rec.dtstart, anchor_index=0, anchor_is_occurrence=False, budget=budget
            )
        )
    else:
        instants = (t for _, t in _stream(engine, after, budget=budget))
    if len(listed) >= limit:
        return
    for instant in instants:
        # Drops instants already listed: wall times in a DST gap can land on the same instant as the next one.
        if (after is None or instant > after) and (not listed or instant > listed[-1]):
            listed.append(instant)
            if len(listed) >= limit:
                return


def occurrence_after(
    rec: Recurrence, *, anchor: datetime, anchor_index: int, after: datetime
) -> tuple[datetime, int] | None:
    """The first occurrence strictly after ``after``, knowing that ``anchor`` is occurrence ``anchor_index``.

    Expansion restarts at the period holding the anchor, so the cost does not depend on ``anchor_index``.
    If the anchor is not actually an occurrence (a due date edited by hand), the answer is still the first
    occurrence after ``after``, numbered as if the anchor were one.
    """
    _require_aware(anchor=anchor, after=after)
    if anchor_index < 1:
        raise ValueError("anchor_index is 1-based")
    if anchor < rec.dtstart:
        # A due date edited to before the series' start (stored as the anchor by
        # earlier versions): it still stands for an occurrence, the first slot at the
        # earliest, and what follows it comes after that slot.
        anchor, after = rec.dtstart, max(after, rec.dtstart)
    engine = _engine_for(rec)
    if after < anchor:
        # Occurrences between `after` and the anchor can only be numbered by walking from the series start.
        candidates = _indexed(engine, anchor=rec.dtstart, anchor_index=0, anchor_is_occurrence=False)
    else:
        candidates = _indexed(engine, anchor=anchor, anchor_index=anchor_index, anchor_is_occurrence=True)
    return next(((instant, index) for instant, index in candidates if instant > after), None)


def next_occurrence(
    rec: Recurrence,
    *,
    current_due: datetime,
    current_index: int,
    now: datetime,
    completed_at: datetime | None = None,
    moved_due: datetime | None = None,
) -> tuple[datetime, int] | None:
    """The occurrence that follows the current one, or None when COUNT/UNTIL is used up.

    ``current_due`` is the current occurrence's slot in the rule (occurrence ``current_index``) and
    ``moved_due`` its due time when a user moved it off that slot.

    "schedule": the first occurrence after the slot, the moved due time and now; missed ones are skipped (and
    counted in the index) rather than stacked, and a moved occurrence is not followed by its own slot.
    "completion": the rule restarts on the local day of completion at the series' time of day, and the next
    occurrence is never that restart point itself.
    """
    _require_aware(current_due=current_due, now=now)
    if rec.basis == "schedule":
        after = max(current_due, now) if moved_due is None else max(current_due, moved_due, now)
        return occurrence_after(rec, anchor=current_due, anchor_index=current_index, after=after)

    done = now if completed_at is None else completed_at
    _require_aware(completed_at=done)
    engine = _engine_for(rec)
    if engine.rule.count is not None and current_index >= engine.rule.count:
        return None
    restart_wall = datetime.combine(_wall(done, engine.zone).date(), engine.start_wall.time())
    restart = _to_utc(restart_wall, engine.zone)
    # The restart takes absent day parts from the restart date, as a new DTSTART would: "monthly" becomes a
    # month after completion. Should that make the rule impossible (FREQ=YEARLY;BYMONTH=2 restarted on the
    # 30th), keep the series' own days (engine.rule has them pinned) rather than silently end the series.
    found = _first_after_restart(_engine(rec.rule, rec.timezone, restart_wall), restart, done)
    if found is None:
        found = _first_after_restart(_build_engine(engine.rule, engine.zone, restart_wall), restart, done)
    return None if found is None else (found, current_index + 1)


def _first_after_restart(restarted: _Engine, restart: datetime, done: datetime) -> datetime | None:
    candidates = _stream(restarted, max(restart, done), bounded=True)
    return next((instant for _, instant in candidates if instant > done and instant != restart), None)


# ----------------------------------------------------------------------------------------------------
# describe()

_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_ORDINAL_WORDS = {
    1: "first",
    2: "second",
    3: "third",
    4: "fourth",
    5: "fifth",
    -1: "last",
    -2: "second-to-last",
}
_UNITS = {
    YEARLY: "year",
    MONTHLY: "month",
    WEEKLY: "week",
    DAILY: "day",
    HOURLY: "hour",
    MINUTELY: "minute",
    SECONDLY: "second",
}
_MAX_LISTED_TIMES = 6


def describe(rec: Recurrence) -> str:
    """Short English text such as "every weekday at 09:00 (America/New_York)"."""
    engine = _engine_for(rec)
    rule = engine.rule
    core = _describe_core(rule) or (
        f"{_every(rule.freq, rule.interval)} following "
        f"{_format_rule(replace(_parse_cached(rec.rule), count=None, until=None))}, "
        f"starting {engine.start_wall:%Y-%m-%d %H:%M}"
    )
    text = f"{core} ({rec.timezone})"
    if rule.count is not None:
        text += ", once" if rule.count == 1 else f", {rule.count} times"
    elif rule.until is not None:
        text += f", until {_wall(rule.until, engine.zone):%Y-%m-%d}"
    return text


def _describe_core(rule: _Rule) -> str | None:
    """Text for the common shapes, or None to let describe() fall back to quoting the rule."""
    if rule.byweekno or rule.byyearday or (rule.bymonth and rule.freq != YEARLY):
        return None
    times = _times_text(rule)
    plain_days = tuple(day for day, ordinal in rule.byday if not ordinal)
    only_plain_days = bool(rule.byday) and len(plain_days) == len(rule.byday)
    many = rule.interval > 1

    if rule.freq in (DAILY, WEEKLY) and not rule.bymonthday and not rule.bysetpos:
        if not rule.byday:
            return ("daily" if not many else f"every {rule.interval} days") + times
        if only_plain_days and not many:
            return _every_weekdays(plain_days) + times
        if only_plain_days and rule.freq == WEEKLY:
            days = (
                "weekdays" if plain_days == _WORKWEEK else _join([_DAY_NAMES[d] for d in plain_days], "and")
            )
            return f"every {rule.interval} weeks on {days}{times}"
    if rule.freq == MONTHLY:
        day_text = _month_day_text(rule, plain_days, only_plain_days)
        if day_text:
            return f"{_every(MONTHLY, rule.interval)} on {day_text}{times}"
    if rule.freq == YEARLY and len(rule.bymonth) == 1:
        month = _MONTH_NAMES[rule.bymonth[0] - 1]
        if len(rule.bymonthday) == 1 and rule.bymonthday[0] > 0 and not rule.byday and not rule.bysetpos:
            return f"{_every(YEARLY, rule.interval)} on {month} {rule.bymonthday[0]}{times}"
        day_text = _month_day_text(rule, plain_days, only_plain_days)
        if day_text:
            return f"{_every(YEARLY, rule.interval)} on {day_text} of {month}{times}"
    hourly_plain = not (rule.byday or rule.bymonthday or rule.byhour or rule.bysetpos)
    if rule.freq == HOURLY and hourly_plain and len(rule.byminute) == 1 and rule.bysecond == (0,):
        return f"{_every(HOURLY, rule.interval)} at :{rule.byminute[0]:02d}"
    return None


def _month_day_text(rule: _Rule, plain_days: tuple[int, ...], only_plain_days: bool) -> str | None:
    if rule.bymonthday and not rule.byday and not rule.bysetpos:
        return _join([_month_day(day) for day in rule.bymonthday], "and")
    if rule.byday and not plain_days and not rule.bymonthday and not rule.bysetpos:
        return _join([f"the {_ordinal(n)} {_DAY_NAMES[day]}" for day, n in rule.byday], "and")
    if only_plain_days and len(rule.bysetpos) == 1 and not rule.bymonthday:
        days = "weekday" if plain_days == _WORKWEEK else _join([_DAY_NAMES[d] for d in plain_days], "or")
        return f"the {_ordinal(rule.bysetpos[0])} {days}"
    return None


def _times_text(rule: _Rule) -> str:
    """The ' at 09:00' part from the pinned BY parts; empty for sub-daily rules, which have no fixed time."""
    if rule.freq >= HOURLY:
        return ""
    stamps = [
        f"{hour:02d}:{minute:02d}" + (f":{second:02d}" if second else "")
        for hour in rule.byhour
        for minute in rule.byminute
        for second in rule.bysecond
    ]
    if len(stamps) > _MAX_LISTED_TIMES:
        return f" at {len(stamps)} times of day"
    return " at " + _join(stamps, "and")


def _every(freq: int, interval: int) -> str:
    unit = _UNITS[freq]
    return f"every {unit}" if interval == 1 else f"every {interval} {unit}s"


def _every_weekdays(days: tuple[int, ...]) -> str:
    if days == _WORKWEEK:
        return "every weekday"
    if len(days) == 7:
        return "every day"
    return "every " + _join([_DAY_NAMES[day] for day in days], "and")


def _month_day(day: int) -> str:
    if day == -1:
        return "the last day"
    if day < 0:
        return f"the {_ordinal(day)} day"
    return f"the {_suffixed(day)}"


def _ordinal(n: int) -> str:
    if n in _ORDINAL_WORDS:
        return _ORDINAL_WORDS[n]
    return _suffixed(n) if n > 0 else f"{_suffixed(-n)}-to-last"


def _suffixed(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _join(items: list[str], conjunction: str) -> str:
    if len(items) == 1:
        return items[0]
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"
