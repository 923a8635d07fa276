"""What expanding a rule costs: the FREQ=YEARLY form of sparse rules, and the work budget of request paths
(parse at create and update, preview)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Literal

import dateutil.rrule
import pytest
from dateutil.rrule import DAILY, HOURLY, MONTHLY, WEEKLY, YEARLY, rrule, rrulestr
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from todos.series.recurrence import Budget, RecurrenceError, occurrences, parse, preview
from todos.series.recurrence.budget import BudgetExceeded, budgeted_rrule, check_dateutil_internals
from todos.series.recurrence.engine import engine_for

pytestmark = pytest.mark.unit

WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@st.composite
def sparse_rules(draw: st.DrawFn) -> str:
    """INTERVAL=1 rules of a FREQ finer than YEARLY with a filter coarser than their period, which leaves most
    periods empty: odd but real encodings such as FREQ=DAILY;BYMONTH=12;BYMONTHDAY=25."""
    freq = draw(st.sampled_from(["HOURLY", "DAILY", "WEEKLY", "MONTHLY"]))
    parts: dict[str, str] = {"FREQ": freq}
    if draw(st.booleans()):
        parts["BYMONTH"] = ",".join(map(str, draw(st.lists(st.integers(1, 12), min_size=1, max_size=3))))
    if freq != "WEEKLY" and draw(st.booleans()):
        monthdays = draw(st.lists(st.sampled_from([1, 13, 15, 28, 29, 30, 31, -1]), min_size=1, max_size=3))
        parts["BYMONTHDAY"] = ",".join(map(str, monthdays))
    if freq == "HOURLY" and draw(st.booleans()):
        parts["BYYEARDAY"] = str(draw(st.sampled_from([1, 60, 100, 366, -1])))
    if draw(st.booleans()):
        parts["BYDAY"] = ",".join(draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=3)))
    if freq in ("HOURLY", "DAILY") and draw(st.booleans()):
        parts["BYHOUR"] = ",".join(map(str, draw(st.lists(st.integers(0, 23), min_size=1, max_size=3))))
    coarser = {
        "MONTHLY": "BYMONTH" in parts or {"BYMONTHDAY", "BYDAY"} <= parts.keys(),
        "WEEKLY": "BYMONTH" in parts,
    }.get(freq, bool({"BYMONTH", "BYMONTHDAY", "BYYEARDAY"} & parts.keys()))
    assume(coarser and {"BYMONTHDAY", "BYYEARDAY", "BYDAY"} & parts.keys())
    return ";".join(f"{key}={value}" for key, value in parts.items())


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(sparse_rules(), st.integers(0, 40 * 366 * 24))
def test_sparse_rules_expanded_as_yearly_give_dateutils_occurrences(rule: str, hours: int) -> None:
    # Starting late in year 9999's last century bounds dateutil's own walk (it stops at the end of 9999) for
    # the sparse draws, which it would otherwise walk for seconds.
    dtstart = datetime(9950, 1, 1) + timedelta(hours=hours)
    try:
        rec = parse(rule, dtstart=dtstart)
    except RecurrenceError as err:
        assume(err.code != "RULE_YIELDS_NOTHING")
        raise
    reference = rrulestr(f"DTSTART:{dtstart:%Y%m%dT%H%M%S}\nRRULE:{rule}")
    expected = [wall.replace(tzinfo=UTC) for wall in itertools.islice(reference, 30)]

    assert engine_for(rec).expansion.freq == YEARLY
    assert occurrences(rec, 30) == expected


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=DAILY;INTERVAL=2;BYDAY=MO",  # the phase matters
        "FREQ=MONTHLY;BYDAY=MO,FR;BYSETPOS=1",  # picks within the month
        "FREQ=MONTHLY;BYDAY=-1FR",  # counts within the month
        "FREQ=HOURLY;BYMINUTE=0,30;BYDAY=MO",  # a large time-of-day set
        "FREQ=DAILY;BYMONTH=2",  # no day part: dateutil would take the day of the year from DTSTART
        "FREQ=WEEKLY;BYDAY=MO,WE,FR",  # fills its periods: scanning a whole year would cost more
        "FREQ=MONTHLY;BYMONTHDAY=-1",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
    ],
)
def test_rules_whose_freq_matters_are_expanded_as_written(rule: str) -> None:
    rec = parse(rule, dtstart=datetime(2026, 1, 5, 9), min_interval=timedelta(minutes=30))
    assert engine_for(rec).expansion == engine_for(rec).rule


# ----------------------------------------------------------------------------------------------------------
# The work budget of request paths


def test_dateutil_still_has_the_internals_the_budget_counts_with() -> None:
    check_dateutil_internals()


def test_a_dateutil_without_them_is_refused_in_a_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(dateutil.rrule, "_iterinfo")
    with pytest.raises(RuntimeError, match=r"python-dateutil .* lacks _iterinfo, _iterinfo\.rebuild"):
        check_dateutil_internals()


@pytest.mark.parametrize(
    ("freq", "extra"),
    [
        (DAILY, {"interval": 2}),
        (HOURLY, {"interval": 5}),
        (WEEKLY, {"interval": 3}),
        (MONTHLY, {"interval": 5}),
    ],
)
def test_every_period_dateutil_runs_is_charged(freq: Literal[1, 2, 3, 4], extra: dict[str, int]) -> None:
    """A rule that never matches: if dateutil stopped calling the counted methods once per period, it would
    walk to the end of year 9999 (for seconds) and end without BudgetExceeded."""
    budget = Budget(100_000)
    never = budgeted_rrule(
        budget, freq=freq, dtstart=datetime(2026, 1, 1), bymonth=(2,), bymonthday=(30,), **extra
    )

    with pytest.raises(BudgetExceeded) as caught:
        next(iter(never))

    assert 99_000 < budget.spent <= 100_000
    assert caught.value.reached is not None
    assert 2026 < caught.value.reached < 2500  # far from year 9999


def test_plain_rrules_are_not_counted() -> None:
    """The workflow's path for stored series has no budget and must never start failing."""
    assert type(rrule(DAILY, dtstart=datetime(2026, 1, 1), count=1)) is rrule
    rec = parse("FREQ=DAILY;INTERVAL=2;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", dtstart=datetime(2026, 1, 1, 9))
    assert len(occurrences(rec, 30)) == 30  # some 4 million units of work


@pytest.mark.parametrize(
    ("rule", "limit", "purpose"),
    [
        (
            "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",
            100,
            "to list 100 occurrences (only 23 occurrences up to ",
        ),
        (
            "FREQ=DAILY;INTERVAL=2;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",
            5,
            "to be checked (only 1 occurrence up to ",
        ),
    ],
)
def test_a_rule_past_the_budget_is_refused_naming_the_rule(rule: str, limit: int, purpose: str) -> None:
    budget = Budget()
    with pytest.raises(RecurrenceError) as caught:
        preview(
            rule, timezone="America/New_York", dtstart=datetime(2026, 12, 1, 9), limit=limit, budget=budget
        )

    assert (caught.value.field, caught.value.code) == ("rule", "RULE_TOO_SPARSE")
    assert str(caught.value).startswith(f"recurrence.rule: {rule!r} yields too rarely {purpose}")
    assert "use a coarser FREQ or fewer BY filters" in str(caught.value)
    assert budget.spent <= budget.units


@pytest.mark.parametrize(
    "rule",
    [
        # The README's patterns and rules, the tests' shapes and the odd-but-real ones: far from the budget.
        "daily",
        "weekdays",
        "every other week",
        "last day of month",
        "every 3 months",
        "FREQ=WEEKLY;BYDAY=MO,WE,FR",
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
        "FREQ=MONTHLY;BYDAY=-1FR",
        "FREQ=MONTHLY;BYMONTHDAY=13;BYDAY=FR",
        "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=25",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
        "FREQ=YEARLY;INTERVAL=10",
        "FREQ=YEARLY;INTERVAL=4;BYMONTH=11;BYDAY=TU;BYMONTHDAY=2,3,4,5,6,7,8",
        "FREQ=YEARLY;BYWEEKNO=1;BYDAY=MO",
        "FREQ=YEARLY;BYYEARDAY=1,100,200",
        "FREQ=DAILY;BYMONTH=12;BYMONTHDAY=25",
        "FREQ=DAILY;BYMONTHDAY=13;BYDAY=FR",
        "FREQ=HOURLY;INTERVAL=6",
    ],
)
def test_real_rules_preview_100_well_within_the_budget(rule: str) -> None:
    budget = Budget()
    rec, listed = preview(
        rule, timezone="America/New_York", dtstart=datetime(2026, 12, 1, 9), limit=100, budget=budget
    )

    assert len(listed) == 100
    assert budget.spent <= 0.7 * budget.units
    assert listed == occurrences(rec, 100)


@st.composite
def any_rules(draw: st.DrawFn) -> tuple[str, str, datetime, timedelta]:
    """Any RRULE the parser may see: every FREQ, INTERVAL, COUNT or UNTIL, every BY part with ordinals,
    BYSETPOS, WKST; with the default minimum interval or one that lets MINUTELY and SECONDLY in. One in ten
    may combine parts RFC 5545 forbids; the others mostly pass the parser."""
    freq = draw(st.sampled_from(["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY"]))
    anything = draw(st.integers(0, 9)) == 0
    allowed = {
        "BYWEEKNO": anything or freq == "YEARLY",
        "BYYEARDAY": anything or freq not in ("MONTHLY", "WEEKLY", "DAILY"),
        "BYMONTHDAY": anything or freq != "WEEKLY",
    }
    numbers = {
        "INTERVAL": st.sampled_from([2, 3, 4, 7, 10, 100, 1000]),
        "BYMONTH": st.integers(1, 12),
        "BYWEEKNO": st.sampled_from([1, 2, 10, 26, 52, 53, -1, -53]),
        "BYYEARDAY": st.sampled_from([1, 59, 60, 100, 365, 366, -1, -366]),
        "BYMONTHDAY": st.sampled_from([1, 2, 13, 15, 28, 29, 30, 31, -1, -2, -31]),
        "BYHOUR": st.integers(0, 23),
        "BYMINUTE": st.integers(0, 59),
        "BYSECOND": st.integers(0, 59),
        "BYSETPOS": st.sampled_from([1, 2, 3, 10, 100, 366, -1, -2, -10, -366]),
    }
    parts = {"FREQ": freq}
    for key, values in numbers.items():
        if allowed.get(key, True) and draw(st.integers(0, 3)) == 0:
            size = 1 if key == "INTERVAL" else draw(st.integers(1, 4))
            parts[key] = ",".join(str(draw(values)) for _ in range(size))
    if draw(st.booleans()):
        ordinals = [""]
        if anything or (freq in ("MONTHLY", "YEARLY") and "BYWEEKNO" not in parts):
            ordinals += ["1", "2", "-1", "5", "-5"]
        if anything or (freq == "YEARLY" and "BYMONTH" not in parts and "BYWEEKNO" not in parts):
            ordinals += ["10", "-20", "53"]
        days = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True))
        parts["BYDAY"] = ",".join(draw(st.sampled_from(ordinals)) + day for day in days)
    if draw(st.integers(0, 4)) == 0:
        parts["WKST"] = draw(st.sampled_from(WEEKDAYS))
    ending = draw(st.sampled_from(["none", "none", "count", "until"]))
    if ending == "count":
        parts["COUNT"] = str(draw(st.integers(1, 500)))
    elif ending == "until":
        parts["UNTIL"] = f"{draw(st.integers(2026, 2500))}0101T000000Z"
    zone = draw(st.sampled_from(["UTC", "America/New_York", "Australia/Sydney"]))
    dtstart = datetime(2026, 1, 1) + timedelta(minutes=draw(st.integers(0, 20 * 366 * 24 * 60)))
    min_interval = draw(st.sampled_from([timedelta(hours=1), timedelta(seconds=1)]))
    return ";".join(f"{key}={value}" for key, value in parts.items()), zone, dtstart, min_interval


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_rules())
def test_random_rules_parse_and_preview_within_the_budget(case: tuple[str, str, datetime, timedelta]) -> None:
    """Both answer or raise a RecurrenceError naming a field (a 422), having counted no more than the budget;
    what the budgeted preview lists is what the unbudgeted expansion gives."""
    rule, zone, dtstart, min_interval = case
    checked, listed_budget = Budget(), Budget()
    try:
        parse(rule, timezone=zone, dtstart=dtstart, min_interval=min_interval, budget=checked)
        rec, listed = preview(
            rule, timezone=zone, dtstart=dtstart, limit=100, min_interval=min_interval, budget=listed_budget
        )
    except RecurrenceError as error:
        event(error.code)
        assert error.field in ("rule", "dtstart")
        assert str(error).startswith(f"recurrence.{error.field}: ")
    else:
        event("previewed")
        assert listed_budget.spent > 0
        assert listed == occurrences(rec, 100)
    assert checked.spent <= checked.units
    assert listed_budget.spent <= listed_budget.units
