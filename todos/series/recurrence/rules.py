"""RFC 5545 rules as text: the rule model, parsing RRULE text and the simple patterns, and writing a
rule back out; the errors a client can act on."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Literal

from dateutil.rrule import DAILY, HOURLY, MINUTELY, MONTHLY, SECONDLY, WEEKLY, YEARLY

Basis = Literal["schedule", "completion"]
_Freq = Literal[0, 1, 2, 3, 4, 5, 6]

BASES: dict[str, Basis] = {"schedule": "schedule", "completion": "completion"}
_FREQS: dict[str, _Freq] = {
    "YEARLY": YEARLY,
    "MONTHLY": MONTHLY,
    "WEEKLY": WEEKLY,
    "DAILY": DAILY,
    "HOURLY": HOURLY,
    "MINUTELY": MINUTELY,
    "SECONDLY": SECONDLY,
}
FREQ_NAMES: dict[int, str] = {value: name for name, value in _FREQS.items()}
_WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
WORKWEEK = (0, 1, 2, 3, 4)

# A rule with nothing in the next century is useless for a todo list. Searches that may find nothing (parse()
# validation, completion restarts) look at least this far ahead; see stream(bounded=True) for the mechanics.
HORIZON_YEARS = 100
# The Gregorian calendar (leap years, weekdays, ISO weeks) repeats exactly every 400 years.
CALENDAR_CYCLE_YEARS = 400
# parse() measures the smallest gap over this many occurrences.
GAP_SAMPLE = 50
# EXDATEs, and RDATEs, a series keeps: skips and moves a person makes, not a second rule.
MAX_EXCEPTIONS = 100
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
    """A series' recurrence set (RFC 5545): the rule's occurrences from ``dtstart``, bounded by its COUNT
    and UNTIL, less ``exdates``, plus ``rdates`` (aware instants, sorted, each at most once)."""

    rule: str
    timezone: str
    dtstart: datetime
    basis: Basis = "schedule"
    exdates: tuple[datetime, ...] = ()
    rdates: tuple[datetime, ...] = ()

    def __post_init__(self) -> None:
        if any(moment.tzinfo is None for moment in (self.dtstart, *self.exdates, *self.rdates)):
            raise ValueError("Recurrence.dtstart, exdates and rdates must be timezone-aware (UTC)")


# ----------------------------------------------------------------------------------------------------
# Rule model and text form


@dataclass(frozen=True)
class Rule:
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
_PATTERNS: dict[str, Rule] = {
    "daily": Rule(DAILY),
    "weekdays": Rule(WEEKLY, byday=tuple((day, 0) for day in WORKWEEK)),
    "every weekday": Rule(WEEKLY, byday=tuple((day, 0) for day in WORKWEEK)),
    "weekly": Rule(WEEKLY),
    "monthly": Rule(MONTHLY),
    "yearly": Rule(YEARLY),
    "annually": Rule(YEARLY),
    "last day of month": Rule(MONTHLY, bymonthday=(-1,)),
    "last day of the month": Rule(MONTHLY, bymonthday=(-1,)),
    "every last day of the month": Rule(MONTHLY, bymonthday=(-1,)),
}
_PATTERN_UNITS: dict[str, _Freq] = {"day": DAILY, "week": WEEKLY, "month": MONTHLY, "year": YEARLY}
_DAY_WORDS = {
    **{name: day for day, name in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday"))},
    "saturday": 5,
    "sunday": 6,
    **{name: day for day, name in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))},
    "tues": 1,
    "thur": 3,
    "thurs": 3,
}
_ORDINAL_WORDS = {
    **{word: n for n, word in enumerate(("first", "second", "third", "fourth", "fifth"), 1)},
    **{word: n for n, word in enumerate(("1st", "2nd", "3rd", "4th", "5th"), 1)},
    "last": -1,
    "second last": -2,
    "second to last": -2,
}
_WEEKEND = ((5, 0), (6, 0))
# "of the month" and its variants: a monthly pattern (ordinals alone say as much).
_MONTH_SUFFIX_RE = re.compile(r" (?:of (?:the|each|every) month|each month|every month|monthly)$")
_LIST_SPLIT_RE = re.compile(r"\s*(?:,|\band\b|&)\s*")
_ORDINAL_DAY_RE = re.compile(r"(" + "|".join(sorted(_ORDINAL_WORDS, key=len, reverse=True)) + r") (.+)")


def shown(text: str) -> str:
    """The user's text, quoted and cut short enough for an error message."""
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _invalid_rule(text: str, detail: str) -> RecurrenceError:
    return RecurrenceError(
        "rule",
        "INVALID_RECURRENCE_RULE",
        f"recurrence.rule: {shown(text)} is not a valid RRULE or pattern ({detail}); {_RULE_HINT}.",
    )


def parse_rule_text(text: str) -> Rule:
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
        return Rule(_PATTERN_UNITS[unit], interval=interval)
    in_words = _weekday_pattern(pattern)
    if in_words is not None:
        return in_words
    if "=" not in text:
        raise _invalid_rule(text, "unknown pattern")
    return _parse_rrule(text)


def _day_word(word: str) -> int | None:
    """A weekday's name or abbreviation, singular or plural; None if it is not one."""
    found = _DAY_WORDS.get(word)
    if found is None and word.endswith("s"):
        found = _DAY_WORDS.get(word[:-1])
    return found


def _weekday_pattern(pattern: str) -> Rule | None:
    """Weekdays in words: "every mon, wed and fri", "every other tuesday",
    "every weekend", "every 2nd and 4th thursday", "first monday of the month",
    "last friday of the month", "last weekday of the month". None when the
    pattern is none of these."""
    if pattern in ("weekends", "every weekend", "every weekend day", "every saturday and sunday"):
        return Rule(WEEKLY, byday=_WEEKEND)
    monthly = _MONTH_SUFFIX_RE.search(pattern) is not None
    words = _MONTH_SUFFIX_RE.sub("", pattern).removeprefix("every ")
    interval = 1
    if words.startswith("other "):
        interval, words = 2, words.removeprefix("other ")
    items = [_ordinal_and_day(token) for token in _LIST_SPLIT_RE.split(words)]
    # "2nd and 4th thursday": an ordinal that names no day takes the last one's.
    last_day = items[-1][1]
    items = [(ordinal, day if day is not None else last_day) for ordinal, day in items]
    ordinals = [ordinal for ordinal, _ in items]
    if len(items) == 1 and last_day in ("weekday", "weekdays") and ordinals[0] and interval == 1:
        return Rule(MONTHLY, byday=tuple((day, 0) for day in WORKWEEK), bysetpos=(ordinals[0],))
    days = [_day_word(day) if day is not None else None for _, day in items]
    if any(day is None for day in days) or (any(ordinals) and not all(ordinals)):
        return None
    byday = tuple(
        sorted({(day, ordinal) for day, ordinal in zip(days, ordinals, strict=True) if day is not None})
    )
    if not any(ordinals):
        return None if monthly else Rule(WEEKLY, interval=interval, byday=byday)
    return Rule(MONTHLY, byday=byday) if interval == 1 else None


def _ordinal_and_day(token: str) -> tuple[int, str | None]:
    """'2nd thursday' -> (2, 'thursday'); '2nd' -> (2, None); 'friday' -> (0, 'friday')."""
    if token in _ORDINAL_WORDS:
        return _ORDINAL_WORDS[token], None
    match = _ORDINAL_DAY_RE.fullmatch(token)
    if match is None or match.group(1) is None:
        return 0, token
    return _ORDINAL_WORDS[match.group(1)], match.group(2)


def _parse_rrule(text: str) -> Rule:
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
    rule = Rule(
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


def _check_combinations(text: str, rule: Rule) -> None:
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


def format_rule(rule: Rule) -> str:
    parts = [f"FREQ={FREQ_NAMES[rule.freq]}"]
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
def parse_cached(text: str) -> Rule:
    return parse_rule_text(text)
