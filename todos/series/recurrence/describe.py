"""Short English text for a rule, such as "every weekday at 09:00 (America/New_York)"."""

from __future__ import annotations

from dataclasses import replace

from dateutil.rrule import DAILY, HOURLY, MINUTELY, MONTHLY, SECONDLY, WEEKLY, YEARLY

from todos.series.recurrence.engine import engine_for, to_wall
from todos.series.recurrence.rules import WORKWEEK, Recurrence, Rule, format_rule, parse_cached

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
    engine = engine_for(rec)
    rule = engine.rule
    core = _describe_core(rule) or (
        f"{_every(rule.freq, rule.interval)} following "
        f"{format_rule(replace(parse_cached(rec.rule), count=None, until=None))}, "
        f"starting {engine.start_wall:%Y-%m-%d %H:%M}"
    )
    text = f"{core} ({rec.timezone})"
    if rule.count is not None:
        text += ", once" if rule.count == 1 else f", {rule.count} times"
    elif rule.until is not None:
        text += f", until {to_wall(rule.until, engine.zone):%Y-%m-%d}"
    return text


def _describe_core(rule: Rule) -> str | None:
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
            days = "weekdays" if plain_days == WORKWEEK else _join([_DAY_NAMES[d] for d in plain_days], "and")
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


def _month_day_text(rule: Rule, plain_days: tuple[int, ...], only_plain_days: bool) -> str | None:
    if rule.bymonthday and not rule.byday and not rule.bysetpos:
        return _join([_month_day(day) for day in rule.bymonthday], "and")
    if rule.byday and not plain_days and not rule.bymonthday and not rule.bysetpos:
        return _join([f"the {_ordinal(n)} {_DAY_NAMES[day]}" for day, n in rule.byday], "and")
    if only_plain_days and len(rule.bysetpos) == 1 and not rule.bymonthday:
        days = "weekday" if plain_days == WORKWEEK else _join([_DAY_NAMES[d] for d in plain_days], "or")
        return f"the {_ordinal(rule.bysetpos[0])} {days}"
    return None


def _times_text(rule: Rule) -> str:
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
    if days == WORKWEEK:
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
