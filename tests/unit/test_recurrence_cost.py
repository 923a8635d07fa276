"""What expanding a rule costs: the FREQ=YEARLY form of sparse rules."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from dateutil.rrule import YEARLY, rrulestr
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from todos.recurrence import RecurrenceError, _engine_for, occurrences, parse

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

    assert _engine_for(rec).expansion.freq == YEARLY
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
    assert _engine_for(rec).expansion == _engine_for(rec).rule
