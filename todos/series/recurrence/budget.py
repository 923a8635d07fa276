"""A work budget for expanding recurrence rules on request paths.

Why it hooks into dateutil: dateutil's cost is in the periods it iterates *between* occurrences. A DAILY rule
with INTERVAL=2 filtered to Mondays that are February 29 runs a million two-day periods for 100 occurrences
without producing anything in between, and looks at UNTIL only when a period produces something,
so no check made at the occurrences it yields can stop it. ``rrule._iter`` calls the day-set method of its
``_iterinfo`` helper (``ydayset``, ``mdayset``, ``wdayset``, ``ddayset``) exactly once per period, a time-set
method once per sub-daily period, and ``rebuild`` whenever the year (or, for numbered weekdays, the month)
changes. ``_BudgetedRRule`` runs dateutil's own ``_iter`` code, unchanged, with ``_iterinfo`` resolved to
``_CountingIterinfo``, which charges each of those calls to a ``Budget`` and raises ``BudgetExceeded`` once it
is spent. dateutil's module is not modified: plain ``rrule`` objects, which the workflow uses for stored
series, run exactly as before and have no budget.

Those are private dateutil internals: ``check_dateutil_internals`` runs at import and refuses to go on if they
are gone, and tests/unit/series/test_recurrence_cost.py checks that the counts still move, so a dateutil
upgrade that changes them fails loudly instead of quietly removing the limit.

A unit is about the cost of running one day through dateutil's loop and one BY filter (some 0.06 us on the
team's machine). The weights below make a period, a day, a filter, a BYSETPOS value, an occurrence produced
and so on cost what they measured in those units, so that units track CPU time within a factor of about 1.5
for every rule shape (bench/recurrence.py measures it). A ``Budget`` belongs to one request and is used by one
thread; nothing here is shared mutable state.
"""

from __future__ import annotations

import math
import types
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time
from importlib.metadata import version
from typing import Any

import dateutil.rrule as _dateutil_rrule
from dateutil.rrule import HOURLY, MINUTELY, SECONDLY, WEEKLY, rrule

__all__ = ["REQUEST_UNITS", "Budget", "BudgetExceeded", "budgeted_rrule", "check_dateutil_internals"]

# What one request (a preview, or the check of a rule at create or update) may spend: 16-20 ms of CPU on the
# team's 2-core machine. The sparsest real rule, FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29 (400 years for 100
# occurrences), spends some 200,000 on a preview of 100; the other rules in the README and tests much less.
REQUEST_UNITS = 300_000

PERIOD_UNITS = 32  # one pass of dateutil's loop, with the period's day list ([None] * 366 for most FREQs)
DAY_UNITS = 0.6  # one day of the period through the loop, before any filter ...
FILTER_UNITS = 0.4  # ... and each BY filter the day reaches (a day stops at the first that rejects it) ...
VALUES_PER_UNIT = 16  # ... which also scans its values, a tuple: 16 values cost a unit
YEARDAY_UNITS = 2  # BYYEARDAY computes two day numbers and scans its values for each
MONTH_DAY_UNITS = 1  # MONTHLY day lists are filled one day at a time, in Python
WEEK_DAY_UNITS = 2  # WEEKLY ones too, looking up each day's weekday
SETPOS_UNITS = 10  # each BYSETPOS value, per period (a miss raises and catches an IndexError) ...
SETPOS_DAYS_PER_UNIT = 8  # ... and scans the period's days, about 8 days per unit
MONTH_UNITS = 20  # WEEKLY and finer step into a following month one month at a time
STEP_UNITS = 4  # HOURLY and finer, with BYHOUR (BYMINUTE, BYSECOND) to reach, step one INTERVAL at a time
REBUILD_UNITS = 30  # a new year's masks; numbered weekdays (per month for MONTHLY) and BYWEEKNO cost more:
NUMBERED_UNITS = 4  # per numbered weekday and month range
WEEKNO_UNITS = 7  # per BYWEEKNO value
TIME_UNITS = 2  # one entry of a time set dateutil builds (per rule, or per period for HOURLY and MINUTELY)
YIELD_UNITS = 40  # one occurrence produced (datetime objects here and in the engine, a zone conversion)

_SECONDS_PER_STEP = {HOURLY: 3600, MINUTELY: 60, SECONDLY: 1}
# The rrule attributes the weights read, set by rrule.__init__.
_RULE_ATTRIBUTES = (
    "_freq",
    "_interval",
    "_bymonth",
    "_byweekno",
    "_byweekday",
    "_bynweekday",
    "_bymonthday",
    "_bynmonthday",
    "_byyearday",
    "_byhour",
    "_byminute",
    "_bysecond",
    "_bysetpos",
)


class BudgetExceeded(Exception):
    """The budget is spent; ``reached`` is the year of the period dateutil was working on.

    Not a ValueError: the engine reads dateutil's ValueError as "no more occurrences"."""

    def __init__(self, reached: int | None) -> None:
        super().__init__(f"recurrence work budget spent (in year {reached})")
        self.reached = reached


class Budget:
    """Units of expansion work one request may spend, across every expansion it runs."""

    def __init__(self, units: int = REQUEST_UNITS) -> None:
        self.units = units
        self.spent = 0
        self.reached: int | None = None  # the year of the last period charged

    def charge(self, units: int) -> None:
        """Count ``units`` more, or raise BudgetExceeded (counting nothing) if they do not fit."""
        if self.spent + units > self.units:
            raise BudgetExceeded(self.reached)
        self.spent += units


def _units_per_day(rule: Any) -> float:
    """What one day of a period costs in dateutil's filter loop, given the rule's BY parts."""
    units, reaching = DAY_UNITS, 1.0
    # dateutil's order, each with its cost when a day reaches it and the share of days it lets through.
    monthdays = len(rule._bymonthday or ()) + len(rule._bynmonthday or ())
    filters = [
        (len(rule._bymonth or ()), FILTER_UNITS, 12),
        (len(rule._byweekno or ()), FILTER_UNITS, 53),  # a mask lookup
        (len(rule._byweekday or ()), FILTER_UNITS, 7),
        (len(rule._bynweekday or ()), FILTER_UNITS, 30),  # a mask lookup
        (monthdays, 2 * FILTER_UNITS, 30),  # two scans: BYMONTHDAY and its negative values
        (2 * len(rule._byyearday or ()), YEARDAY_UNITS, 2 * 366),
    ]
    for values, cost, share in filters:
        if values:
            units += reaching * (cost + values / VALUES_PER_UNIT)
            reaching *= min(1.0, values / share)
    return units


# What dateutil's day-set methods return: the day list (None for days outside the period), its start and end.
_DaySet = tuple[Iterable[int | None], int, int]


class _CountingIterinfo(_dateutil_rrule._iterinfo):
    """dateutil's per-iteration helper, charging the budget of the ``_BudgetedRRule`` it serves."""

    # No __slots__: the base class initialises its slots from ``self.__slots__``, which a new one would hide.
    _per_day: float | None = None
    _month: int | None = None  # months since year 0 at the last WEEKLY or finer period
    _position: int | None = None  # seconds since day 0 at the last sub-daily period
    _time_of_day = 0  # seconds, from the time set of the last sub-daily period

    def _period(self, found: _DaySet, year: int, month: int, day: int, *, built_per_day: float = 0) -> Any:
        _, start, end = found
        rule: Any = self.rrule
        budget: Budget = rule.budget
        # Only the year: dateutil passes DTSTART's month and day along with later years and months, which need
        # not make a date (February 29 in 2027). Nothing here may raise a ValueError, which the engine would
        # read as the end of the rule.
        budget.reached = year
        if self._per_day is None:
            self._per_day = _units_per_day(rule) + built_per_day
        days = end - start
        positions = len(rule._bysetpos or ())
        units = PERIOD_UNITS + math.ceil(self._per_day * days)
        units += positions * (SETPOS_UNITS + days // SETPOS_DAYS_PER_UNIT)
        if rule._freq >= WEEKLY:
            units += self._steps(rule, year, month, day)
        budget.charge(units)
        return found

    def _steps(self, rule: Any, year: int, month: int, day: int) -> int:
        """What dateutil's loops spent moving here from the previous period: it steps into each following
        month in turn, and sub-daily rules step one INTERVAL at a time towards the next BYHOUR (BYMINUTE,
        BYSECOND) value; when a day is filtered out it jumps to the day's end, which this overcounts."""
        months, self._month = self._month, year * 12 + month
        units = MONTH_UNITS * (self._month - (months if months is not None else self._month))
        freq = rule._freq
        loops = {HOURLY: rule._byhour, MINUTELY: rule._byhour or rule._byminute}.get(freq, freq == SECONDLY)
        if freq in _SECONDS_PER_STEP and loops:
            # Sub-daily periods are real days (dateutil builds them from an ordinal), so this date exists.
            position, self._position = self._position, date(year, month, day).toordinal() * 86_400
            self._position += self._time_of_day
            if position is not None:
                step = _SECONDS_PER_STEP[freq] * rule._interval
                units += STEP_UNITS * ((self._position - position) // step)
        return units

    def ydayset(self, year: int, month: int, day: int) -> _DaySet:
        return self._period(super().ydayset(year, month, day), year, month, day)

    def mdayset(self, year: int, month: int, day: int) -> _DaySet:
        return self._period(
            super().mdayset(year, month, day), year, month, day, built_per_day=MONTH_DAY_UNITS
        )

    def wdayset(self, year: int, month: int, day: int) -> _DaySet:
        return self._period(super().wdayset(year, month, day), year, month, day, built_per_day=WEEK_DAY_UNITS)

    def ddayset(self, year: int, month: int, day: int) -> _DaySet:
        return self._period(super().ddayset(year, month, day), year, month, day)

    def _time_set(self, found: Any, hour: int, minute: int, second: int) -> Any:
        self._time_of_day = hour * 3600 + minute * 60 + second
        budget: Budget = self.rrule.budget  # type: ignore[attr-defined]
        budget.charge(PERIOD_UNITS + TIME_UNITS * len(found))
        return found

    def htimeset(self, hour: int, minute: int, second: int) -> list[time]:
        return self._time_set(super().htimeset(hour, minute, second), hour, minute, second)

    def mtimeset(self, hour: int, minute: int, second: int) -> list[time]:
        return self._time_set(super().mtimeset(hour, minute, second), hour, minute, second)

    def stimeset(self, hour: int, minute: int, second: int) -> tuple[time, ...]:
        return self._time_set(super().stimeset(hour, minute, second), hour, minute, second)

    def rebuild(self, year: int, month: int) -> None:
        rule: Any = self.rrule
        numbered = rule._bynweekday or ()
        if year != self.lastyear or (numbered and month != self.lastmonth):
            ranges = len(rule._bymonth or ()) or 1
            weeks = len(rule._byweekno or ())
            rule.budget.charge(REBUILD_UNITS + NUMBERED_UNITS * len(numbered) * ranges + WEEKNO_UNITS * weeks)
        super().rebuild(year, month)


def _iter_with_counting() -> types.FunctionType:
    """dateutil's ``rrule._iter`` (the same code object) resolving ``_iterinfo`` to the counting subclass."""
    original = _dateutil_rrule.rrule._iter  # type: ignore[attr-defined]
    namespace = dict(vars(_dateutil_rrule), _iterinfo=_CountingIterinfo)
    return types.FunctionType(original.__code__, namespace, original.__name__)


def check_dateutil_internals() -> None:
    """Refuse to run without the internals the counting relies on (see the module docstring)."""
    original = getattr(_dateutil_rrule.rrule, "_iter", None)
    code = getattr(original, "__code__", None)
    helper = getattr(_dateutil_rrule, "_iterinfo", None)
    methods = ("rebuild", "ydayset", "mdayset", "wdayset", "ddayset", "htimeset", "mtimeset", "stimeset")
    sample = rrule(HOURLY, dtstart=datetime(2026, 1, 1), count=1)
    missing = [
        what
        for what, present in [
            ("rrule._iter", isinstance(original, types.FunctionType) and original.__closure__ is None),
            ("rrule._iter calling _iterinfo", code is not None and "_iterinfo" in code.co_names),
            ("_iterinfo", isinstance(helper, type) and hasattr(helper, "__slots__")),
            *((f"_iterinfo.{name}", callable(getattr(helper, name, None))) for name in methods),
            *((f"rrule.{name}", hasattr(sample, name)) for name in _RULE_ATTRIBUTES),
        ]
        if not present
    ]
    if missing:
        raise RuntimeError(
            f"python-dateutil {version('python-dateutil')} lacks {', '.join(missing)}, which "
            "todos.series.recurrence.budget needs to bound recurrence previews; pin the version it was "
            "written for (2.9) or adapt the module."
        )


check_dateutil_internals()
_counting_iter = _iter_with_counting()


class _BudgetedRRule(rrule):
    def __init__(self, budget: Budget, **kwargs: Any) -> None:
        self.budget = budget
        super().__init__(**kwargs)

    def _iter(self) -> Iterator[datetime]:
        for found in _counting_iter(self):
            self.budget.charge(YIELD_UNITS)
            yield found


def budgeted_rrule(budget: Budget, **kwargs: Any) -> rrule:
    """``rrule(**kwargs)`` whose expansion charges ``budget``; building its time set is charged at once."""
    if kwargs["freq"] < HOURLY:
        # dateutil builds every time of day (BYHOUR x BYMINUTE x BYSECOND) up front for DAILY and coarser.
        sizes = [len(kwargs.get(key) or (0,)) for key in ("byhour", "byminute", "bysecond")]
        budget.charge(TIME_UNITS * sizes[0] * sizes[1] * sizes[2])
    return _BudgetedRRule(budget, **kwargs)
