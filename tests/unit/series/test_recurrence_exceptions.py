"""EXDATE and RDATE: the recurrence set (RFC 5545) in every place occurrences are computed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.series.test_recurrence import HEAVY, RuleCase, parse_case, rule_cases, utc
from todos.series.recurrence import (
    RecurrenceError,
    next_occurrence,
    occurrence_after,
    occurrences,
    parse,
    upcoming,
    with_exceptions,
)

pytestmark = pytest.mark.unit

LENGTH = 30


def recurrence_set(rule: list[datetime], exdates: set[datetime], rdates: set[datetime]) -> list[datetime]:
    return sorted((set(rule) - exdates) | (rdates - exdates))


@HEAVY
@given(rule_cases(endings=("none", "count", "until-utc")), st.data())
def test_the_workflow_walk_and_the_listing_both_give_the_recurrence_set(
    case: RuleCase, data: st.DataObject
) -> None:
    rec = parse_case(case)
    rule, ended = case.reference(LENGTH)
    if len(rule) < 3:
        return
    # Exclude rule occurrences (never the first: that is the task itself) and add dates between them;
    # an RDATE may also land on an excluded date, or past COUNT and UNTIL. Where the reference list stops
    # short of the series' end, only what lies within it is known.
    exdates = set(data.draw(st.lists(st.sampled_from(rule[1:]), max_size=5), label="exdates"))
    rdates = {
        rule[0] + timedelta(minutes=data.draw(st.integers(1, 60 * 24 * 400)), seconds=0)
        for _ in range(data.draw(st.integers(0, 4), label="rdates"))
    } | set(data.draw(st.lists(st.sampled_from(sorted(exdates) or rule), max_size=1), label="on an exdate"))
    rdates = {moment.replace(second=0) for moment in rdates if moment > rule[0]}
    full = with_exceptions(rec, exdates=sorted(exdates), rdates=sorted(rdates))
    horizon = rule[-1] if not ended else max([*rule, *rdates])
    want = [moment for moment in recurrence_set(rule, exdates, rdates) if moment <= horizon]

    listed = [moment for moment in occurrences(full, LENGTH + 10) if moment <= horizon]

    due, index, walked = full.dtstart, 1, [full.dtstart]
    while (step := next_occurrence(full, current_due=due, current_index=index, now=due)) is not None:
        if step[0] > horizon:
            break
        due, index = step
        walked.append(due)
    assert listed == want[: len(listed)]
    assert walked == want[: len(walked)]
    assert len(walked) == len(want) or not ended


def test_an_rdate_keeps_the_rules_count_and_an_exdate_uses_it_up() -> None:
    # COUNT=3 bounds the rule (1st, 2nd, 3rd); the 2nd is excluded, an RDATE added after the 3rd.
    rec = parse("FREQ=DAILY;COUNT=3", dtstart=datetime(2026, 12, 1, 9), timezone="UTC")
    full = with_exceptions(rec, exdates=[datetime(2026, 12, 2, 9)], rdates=[datetime(2026, 12, 10, 18)])

    assert occurrences(full, 10) == [utc(2026, 12, 1, 9), utc(2026, 12, 3, 9), utc(2026, 12, 10, 18)]
    assert next_occurrence(full, current_due=utc(2026, 12, 1, 9), current_index=1, now=utc(2026, 12, 1)) == (
        utc(2026, 12, 3, 9),
        3,
    )
    # From the RDATE, numbered after the rule's last occurrence: the series is used up.
    assert next_occurrence(full, current_due=utc(2026, 12, 3, 9), current_index=3, now=utc(2026, 12, 3)) == (
        utc(2026, 12, 10, 18),
        3,
    )
    assert (
        next_occurrence(full, current_due=utc(2026, 12, 10, 18), current_index=3, now=utc(2026, 12, 10))
        is None
    )


def test_upcoming_lists_what_the_workflow_will_create_after_a_moved_date() -> None:
    rec = parse("daily", dtstart=datetime(2026, 12, 1, 9), timezone="Europe/Paris")
    # Dec 3 moved to Dec 3 14:00 (wall time in Paris): an EXDATE and an RDATE.
    moved = with_exceptions(rec, exdates=[datetime(2026, 12, 3, 9)], rdates=[datetime(2026, 12, 3, 14)])

    listed = upcoming(moved, anchor=moved.dtstart, anchor_index=1, after=moved.dtstart, limit=3)

    # The moved date is numbered as the slot it left (#3), so the rule counts on from there.
    assert listed == [(utc(2026, 12, 2, 8), 2), (utc(2026, 12, 3, 13), 3), (utc(2026, 12, 4, 8), 4)]
    anchor, index = moved.dtstart, 1
    for expected in listed:
        found = occurrence_after(moved, anchor=anchor, anchor_index=index, after=anchor)
        assert found == expected
        anchor, index = expected


def test_wall_times_without_an_offset_are_in_the_series_zone_and_instants_stay_instants() -> None:
    rec = parse(
        "daily",
        dtstart=datetime(2026, 12, 1, 9),
        timezone="America/New_York",
        exdates=[datetime(2026, 12, 2, 9), datetime(2026, 12, 4, 14, tzinfo=UTC)],
        rdates=[datetime(2026, 12, 2, 9, 30)],
    )

    assert rec.exdates == (utc(2026, 12, 2, 14), utc(2026, 12, 4, 14))
    assert rec.rdates == (utc(2026, 12, 2, 14, 30),)


@pytest.mark.parametrize(
    ("basis", "exdates", "rdates", "field", "code"),
    [
        ("completion", [datetime(2026, 12, 2, 9)], [], "exdates", "EXCEPTIONS_NEED_SCHEDULE"),
        ("schedule", [datetime(2026, 12, 1, 9)], [], "exdates", "EXDATE_IS_START"),
        ("schedule", [], [datetime(2026, 11, 30, 9)], "rdates", "RDATE_BEFORE_START"),
        (
            "schedule",
            [datetime(2026, 12, 2) + timedelta(days=n) for n in range(101)],
            [],
            "exdates",
            "TOO_MANY_EXCEPTIONS",
        ),
    ],
)
def test_exceptions_that_cannot_hold_are_refused_naming_the_field(
    basis: str, exdates: list[datetime], rdates: list[datetime], field: str, code: str
) -> None:
    with pytest.raises(RecurrenceError) as refused:
        parse("daily", dtstart=datetime(2026, 12, 1, 9), basis=basis, exdates=exdates, rdates=rdates)

    assert (refused.value.field, refused.value.code) == (field, code)
    assert str(refused.value).startswith(f"recurrence.{field}: ")
