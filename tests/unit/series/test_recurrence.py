"""todos.series.recurrence: RFC 5545 expansion, re-anchoring, DST, bases, validation and describe()."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from todos.series.recurrence import (
    Recurrence,
    RecurrenceError,
    describe,
    next_occurrence,
    occurrence_after,
    occurrences,
    parse,
)

pytestmark = pytest.mark.unit

NEW_YORK = "America/New_York"
ZONES = (
    "UTC",
    NEW_YORK,
    "Europe/Paris",
    "Europe/London",
    "Australia/Sydney",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "Pacific/Auckland",
    "America/St_Johns",
)
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(zone: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """The instant of a wall time in ``zone``."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def walk_with_dateutil(rule: str, zone: str, dtstart: datetime, limit: int) -> list[datetime]:
    """The reference: plain dateutil from the original wall-time start, converted to instants."""
    expanded = rrulestr(f"DTSTART:{dtstart:%Y%m%dT%H%M%S}\nRRULE:{rule}")
    result = []
    for wall in expanded:
        result.append(wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC))
        if len(result) == limit:
            break
    return result


# ----------------------------------------------------------------------------------------------------------
# Random rules


@dataclass(frozen=True)
class RuleCase:
    parts: tuple[tuple[str, str], ...]  # everything but COUNT and UNTIL
    count: int | None
    until: datetime | None  # instant
    until_text: str | None  # as written in the rule: UTC with Z, or local wall time
    zone: str
    dtstart: datetime  # wall time in zone

    @property
    def rule(self) -> str:
        parts = list(self.parts)
        if self.count is not None:
            parts.append(("COUNT", str(self.count)))
        if self.until_text is not None:
            parts.append(("UNTIL", self.until_text))
        return ";".join(f"{key}={value}" for key, value in parts)

    def reference(self, limit: int) -> tuple[list[datetime], bool]:
        """First `limit` occurrences walked by dateutil from the original start; True if the series ended."""
        parts = dict(self.parts)
        start = self.dtstart
        if parts["FREQ"] == "WEEKLY" and "BYSETPOS" in parts:
            # dateutil cuts the first week short at DTSTART before applying BYSETPOS; RFC 5545 (and the
            # engine) pick from the whole week, so walk from the week's start and drop what precedes DTSTART.
            wkst = WEEKDAYS.index(parts.get("WKST", "MO"))
            start = datetime.combine(
                start.date() - timedelta(days=(start.weekday() - wkst) % 7), datetime.min.time()
            )
            parts.update(BYHOUR=str(self.dtstart.hour), BYMINUTE=str(self.dtstart.minute), BYSECOND="0")
        body = ";".join(f"{key}={value}" for key, value in parts.items())
        expanded = rrulestr(f"DTSTART:{start:%Y%m%dT%H%M%S}\nRRULE:{body}")
        horizon = self.dtstart + timedelta(days=150 * 365)
        result: list[datetime] = []
        for wall in expanded:
            if wall > horizon:
                return result, False
            if wall < self.dtstart:
                continue
            instant = wall.replace(tzinfo=ZoneInfo(self.zone)).astimezone(UTC)
            if self.until is not None and instant > self.until:
                return result, True
            result.append(instant)
            if self.count is not None and len(result) == self.count:
                return result, True
            if len(result) == limit:
                return result, False
        return result, True


ENDINGS = ("none", "count", "until-utc", "until-local")


@st.composite
def rule_cases(draw: st.DrawFn, endings: tuple[str, ...] = ENDINGS) -> RuleCase:
    freq = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]))
    parts: dict[str, str] = {"FREQ": freq}
    interval = draw(st.integers(1, 4))
    if interval > 1:
        parts["INTERVAL"] = str(interval)
    if freq == "YEARLY" and draw(st.booleans()):
        months = draw(st.lists(st.integers(1, 12), min_size=1, max_size=3, unique=True))
        parts["BYMONTH"] = ",".join(map(str, months))
    if freq != "WEEKLY" and draw(st.booleans()):
        monthdays = [1, 2, 15, 28, 29, 30, 31, -1, -2, -7]
        parts["BYMONTHDAY"] = ",".join(
            map(str, draw(st.lists(st.sampled_from(monthdays), min_size=1, max_size=3, unique=True)))
        )
    if draw(st.booleans()):
        days = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=5, unique=True))
        if freq in ("MONTHLY", "YEARLY") and draw(st.booleans()):
            # Numbers beyond 5 count weeks of the year, which only works without BYMONTH.
            ordinals = [1, 2, 3, 4, -1, -2] + (
                [10, 26, 52, -20] if freq == "YEARLY" and "BYMONTH" not in parts else []
            )
            days = [f"{draw(st.sampled_from(ordinals))}{day}" for day in days]
        parts["BYDAY"] = ",".join(days)
    if ("BYDAY" in parts or "BYMONTHDAY" in parts) and draw(st.booleans()):
        parts["BYSETPOS"] = str(draw(st.sampled_from([1, 2, -1, -2])))
    if freq == "WEEKLY" and draw(st.booleans()):
        parts["WKST"] = draw(st.sampled_from(["SU", "WE"]))

    zone = draw(st.sampled_from(ZONES))
    dtstart = datetime(2020, 1, 1) + timedelta(minutes=draw(st.integers(0, 11 * 366 * 24 * 60)) // 15 * 15)
    count = until = until_text = None
    ending = draw(st.sampled_from(endings))
    if ending == "count":
        count = draw(st.integers(1, 30))
    elif ending != "none":
        until_wall = dtstart + timedelta(days=draw(st.integers(0, 3000)), hours=draw(st.integers(0, 23)))
        until = until_wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
        until_text = f"{until:%Y%m%dT%H%M%SZ}" if ending == "until-utc" else f"{until_wall:%Y%m%dT%H%M%S}"
    return RuleCase(tuple(parts.items()), count, until, until_text, zone, dtstart)


def parse_case(case: RuleCase, basis: str = "schedule") -> Recurrence:
    try:
        return parse(case.rule, timezone=case.zone, dtstart=case.dtstart, basis=basis)
    except RecurrenceError as err:
        assume(err.code != "RULE_YIELDS_NOTHING")
        raise


HEAVY = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
REFERENCE_LENGTH = 40


@HEAVY
@given(rule_cases())
def test_random_rules_expand_like_dateutil_in_strictly_increasing_order(case: RuleCase) -> None:
    rec = parse_case(case)
    expected, _ = case.reference(REFERENCE_LENGTH)

    got = occurrences(rec, REFERENCE_LENGTH)

    assert got[: len(expected)] == expected
    assert rec.dtstart == expected[0]
    assert all(earlier < later for earlier, later in itertools.pairwise(got))


@HEAVY
@given(rule_cases(), st.data())
def test_reanchored_occurrence_after_equals_the_walk_from_dtstart(
    case: RuleCase, data: st.DataObject
) -> None:
    rec = parse_case(case)
    expected, ended = case.reference(REFERENCE_LENGTH)
    anchors = data.draw(st.lists(st.integers(1, len(expected)), min_size=1, max_size=5), label="anchor #k")
    for k in anchors:
        # `after` falls on or after occurrence #target and before the next one.
        target = data.draw(st.integers(k, len(expected)), label="target")
        after = expected[target - 1]
        if target < len(expected):
            gap = expected[target] - after
            after += gap * data.draw(st.floats(0, 0.999), label="fraction")
            want: tuple[datetime, int] | None = (expected[target], target + 1)
        elif ended:
            want = None
        else:
            continue  # beyond the reference list: unknown

        assert occurrence_after(rec, anchor=expected[k - 1], anchor_index=k, after=after) == want


@HEAVY
@given(rule_cases(endings=("count",)), st.sampled_from(["schedule", "completion"]))
def test_count_holds_across_generations(case: RuleCase, basis: str) -> None:
    rec = parse_case(case, basis)
    expected, ended = case.reference(REFERENCE_LENGTH)
    due, index = rec.dtstart, 1
    generations = [due]
    while (
        step := next_occurrence(rec, current_due=due, current_index=index, now=due, completed_at=due)
    ) is not None:
        assert step[1] == index + 1
        assert step[0] > due
        due, index = step
        generations.append(due)
        assert len(generations) <= REFERENCE_LENGTH

    assert case.count is not None
    assert index <= case.count
    if basis == "schedule":
        assert generations[: len(expected)] == expected
    if ended:  # the reference saw the whole series, not just its first 150 years
        assert index == len(expected)
        assert index == case.count


def test_reanchoring_matches_dateutil_for_exotic_parts() -> None:
    rules = [
        "FREQ=YEARLY;BYWEEKNO=1,20,-1;BYDAY=MO,SU;WKST=SU",
        "FREQ=YEARLY;BYYEARDAY=1,100,-1",
        "FREQ=YEARLY;INTERVAL=2;BYMONTH=11;BYDAY=4TH",
        "FREQ=MONTHLY;INTERVAL=3;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=2,-1",
        "FREQ=MONTHLY;BYMONTHDAY=13;BYDAY=FR",
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=SU,TU;WKST=SU",
        "FREQ=DAILY;INTERVAL=3;BYHOUR=8,20",
        "FREQ=HOURLY;INTERVAL=5;BYHOUR=0,5,10,15,20;BYMINUTE=30",
        "FREQ=HOURLY;INTERVAL=7",
    ]
    for rule in rules:
        start = datetime(2025, 12, 30, 8, 30)
        rec = parse(rule, timezone=NEW_YORK, dtstart=start)
        walk = walk_with_dateutil(rule, NEW_YORK, start, 120)
        assert occurrences(rec, 120) == walk, rule
        for k in range(1, len(walk)):
            assert occurrence_after(rec, anchor=walk[k - 1], anchor_index=k, after=walk[k - 1]) == (
                walk[k],
                k + 1,
            )


# ----------------------------------------------------------------------------------------------------------
# Parsing and normalisation


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("daily", "FREQ=DAILY"),
        ("Every Day", "FREQ=DAILY"),
        ("weekdays", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
        ("weekly", "FREQ=WEEKLY"),
        ("every week", "FREQ=WEEKLY"),
        ("monthly", "FREQ=MONTHLY"),
        ("yearly", "FREQ=YEARLY"),
        ("every year", "FREQ=YEARLY"),
        ("every 3 days", "FREQ=DAILY;INTERVAL=3"),
        ("every 2 weeks", "FREQ=WEEKLY;INTERVAL=2"),
        ("every 6 months", "FREQ=MONTHLY;INTERVAL=6"),
        ("every other day", "FREQ=DAILY;INTERVAL=2"),
        ("every other week", "FREQ=WEEKLY;INTERVAL=2"),
        ("every other month", "FREQ=MONTHLY;INTERVAL=2"),
        ("last day of month", "FREQ=MONTHLY;BYMONTHDAY=-1"),
        ("RRULE:freq=weekly;byday=we,mo;interval=1", "FREQ=WEEKLY;BYDAY=MO,WE"),
        ("FREQ=MONTHLY;BYDAY=-1FR,2TU", "FREQ=MONTHLY;BYDAY=TU,-1FR".replace("TU,-1FR", "2TU,-1FR")),
        ("FREQ=DAILY;BYHOUR=18,9,9", "FREQ=DAILY;BYHOUR=9,18"),
    ],
)
def test_patterns_and_rrules_are_normalised(text: str, rule: str) -> None:
    assert parse(text, dtstart=utc(2026, 1, 6, 9, 0)).rule == rule


def test_simple_patterns_keep_the_start_weekday_day_and_date() -> None:
    start = utc(2026, 2, 18, 9, 0)  # a Wednesday
    assert occurrences(parse("weekly", dtstart=start), 2)[1] == utc(2026, 2, 25, 9, 0)
    assert occurrences(parse("monthly", dtstart=start), 2)[1] == utc(2026, 3, 18, 9, 0)
    assert occurrences(parse("yearly", dtstart=start), 2)[1] == utc(2027, 2, 18, 9, 0)


def test_naive_dtstart_is_wall_time_and_aware_dtstart_is_an_instant() -> None:
    naive = parse("daily", timezone=NEW_YORK, dtstart=datetime(2026, 1, 5, 9, 0))
    aware = parse("daily", timezone=NEW_YORK, dtstart=utc(2026, 1, 5, 14, 0))
    assert naive.dtstart == aware.dtstart == utc(2026, 1, 5, 14, 0)
    assert naive.dtstart.tzinfo is UTC


def test_series_starts_at_the_first_matching_occurrence_not_at_dtstart() -> None:
    rec = parse("FREQ=WEEKLY;BYDAY=MO,WE", dtstart=utc(2026, 1, 6, 9, 0))  # a Tuesday
    assert rec.dtstart == utc(2026, 1, 7, 9, 0)


def test_until_in_local_time_is_normalised_to_utc_and_inclusive() -> None:
    rec = parse("FREQ=DAILY;UNTIL=20260110T090000", timezone=NEW_YORK, dtstart=datetime(2026, 1, 5, 9, 0))
    assert rec.rule == "FREQ=DAILY;UNTIL=20260110T140000Z"
    assert occurrences(rec, 100)[-1] == local(NEW_YORK, 2026, 1, 10, 9, 0)
    assert len(occurrences(rec, 100)) == 6


def test_date_only_until_keeps_the_whole_day() -> None:
    rec = parse("FREQ=DAILY;UNTIL=20260110", timezone="Europe/Paris", dtstart=datetime(2026, 1, 5, 21, 0))
    assert occurrences(rec, 100)[-1] == local("Europe/Paris", 2026, 1, 10, 21, 0)


def test_timezone_names_are_matched_case_insensitively() -> None:
    assert parse("daily", timezone="europe/paris", dtstart=utc(2026, 1, 5)).timezone == "Europe/Paris"


def test_weekly_bysetpos_picks_from_the_whole_week() -> None:
    # dateutil would answer Friday 2026-01-09 (it cuts the first week at DTSTART); RFC 5545 says Monday.
    rec = parse("FREQ=WEEKLY;BYDAY=MO,FR;BYSETPOS=1", dtstart=utc(2026, 1, 7, 9, 0))  # a Wednesday
    assert occurrences(rec, 2) == [utc(2026, 1, 12, 9, 0), utc(2026, 1, 19, 9, 0)]


# ----------------------------------------------------------------------------------------------------------
# Wall time and DST


def test_daily_0900_new_york_keeps_local_time_across_both_2026_switches() -> None:
    rec = parse("daily", timezone=NEW_YORK, dtstart=datetime(2026, 1, 1, 9, 0))
    days = occurrences(rec, 365)
    zone = ZoneInfo(NEW_YORK)
    assert {day.astimezone(zone).hour for day in days} == {9}
    by_date = {day.astimezone(zone).date().isoformat(): day.hour for day in days}
    assert by_date["2026-01-15"] == 14
    assert (by_date["2026-03-07"], by_date["2026-03-08"]) == (14, 13)
    assert by_date["2026-07-01"] == 13
    assert (by_date["2026-10-31"], by_date["2026-11-01"]) == (13, 14)


def test_0230_daily_across_spring_forward_moves_forward_by_the_gap() -> None:
    rec = parse("daily", timezone=NEW_YORK, dtstart=datetime(2026, 3, 6, 2, 30))
    got = occurrences(rec, 4)
    assert got == [
        utc(2026, 3, 6, 7, 30),
        utc(2026, 3, 7, 7, 30),
        utc(2026, 3, 8, 7, 30),
        utc(2026, 3, 9, 6, 30),
    ]
    assert [t.astimezone(ZoneInfo(NEW_YORK)).strftime("%H:%M") for t in got] == [
        "02:30",
        "02:30",
        "03:30",
        "02:30",
    ]
    # Re-anchoring at the shifted occurrence finds the next real 02:30.
    assert occurrence_after(rec, anchor=got[2], anchor_index=3, after=got[2]) == (got[3], 4)


def test_series_starting_inside_the_gap_keeps_its_wall_time() -> None:
    rec = parse("daily", timezone=NEW_YORK, dtstart=datetime(2026, 3, 8, 2, 30))
    assert rec.dtstart == utc(2026, 3, 8, 7, 30)
    assert occurrences(rec, 3)[1:] == [utc(2026, 3, 9, 6, 30), utc(2026, 3, 10, 6, 30)]
    assert describe(rec) == "daily at 02:30 (America/New_York)"


def test_ambiguous_fall_back_time_takes_the_first_instance() -> None:
    rec = parse("daily", timezone=NEW_YORK, dtstart=datetime(2026, 10, 31, 1, 30))
    assert occurrences(rec, 3) == [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]


def test_jan_31_monthly_skips_to_march_31() -> None:
    rec = parse("monthly", dtstart=utc(2026, 1, 31, 9, 0))
    assert occurrences(rec, 3) == [utc(2026, 1, 31, 9, 0), utc(2026, 3, 31, 9, 0), utc(2026, 5, 31, 9, 0)]


@pytest.mark.parametrize(("year", "february_last"), [(2026, 28), (2028, 29)])
def test_last_day_of_month_lands_on_feb_28_or_29(year: int, february_last: int) -> None:
    rec = parse("last day of month", dtstart=utc(year, 1, 10, 9, 0))
    assert occurrences(rec, 2) == [utc(year, 1, 31, 9, 0), utc(year, 2, february_last, 9, 0)]


# ----------------------------------------------------------------------------------------------------------
# occurrences / occurrence_after


def test_occurrences_after_is_strict_and_respects_count() -> None:
    rec = parse("FREQ=DAILY;COUNT=5", dtstart=utc(2026, 1, 1, 9, 0))
    assert occurrences(rec, 10, after=utc(2026, 1, 3, 9, 0)) == [utc(2026, 1, 4, 9, 0), utc(2026, 1, 5, 9, 0)]
    assert occurrences(rec, 0) == []
    endless = parse("daily", dtstart=utc(2026, 1, 1, 9, 0))
    assert occurrences(endless, 2, after=utc(2030, 6, 1, 12, 0)) == [
        utc(2030, 6, 2, 9, 0),
        utc(2030, 6, 3, 9, 0),
    ]
    assert occurrences(endless, 1, after=utc(2000, 1, 1)) == [utc(2026, 1, 1, 9, 0)]


def test_occurrence_after_counts_the_occurrences_it_passes() -> None:
    rec = parse("FREQ=WEEKLY;BYDAY=MO,WE,FR", dtstart=utc(2026, 1, 5, 9, 0))
    # anchor #1 Mon Jan 5; after Tue Jan 13 noon comes Wed Jan 14, #5 after Jan 7, 9 and 12
    assert occurrence_after(rec, anchor=rec.dtstart, anchor_index=1, after=utc(2026, 1, 13, 12)) == (
        utc(2026, 1, 14, 9, 0),
        5,
    )


def test_occurrence_after_before_the_anchor_walks_from_the_start() -> None:
    rec = parse("daily", dtstart=utc(2026, 1, 1, 9, 0))
    assert occurrence_after(
        rec, anchor=utc(2026, 1, 10, 9, 0), anchor_index=10, after=utc(2026, 1, 3, 12)
    ) == (
        utc(2026, 1, 4, 9, 0),
        4,
    )


def test_occurrence_after_is_none_when_count_or_until_is_exhausted() -> None:
    counted = parse("FREQ=DAILY;COUNT=3", dtstart=utc(2026, 1, 1, 9, 0))
    assert (
        occurrence_after(counted, anchor=utc(2026, 1, 3, 9, 0), anchor_index=3, after=utc(2026, 1, 3, 9))
        is None
    )
    until = parse("FREQ=DAILY;UNTIL=20260103T090000Z", dtstart=utc(2026, 1, 1, 9, 0))
    assert occurrence_after(
        until, anchor=utc(2026, 1, 2, 9, 0), anchor_index=2, after=utc(2026, 1, 2, 9)
    ) == (
        utc(2026, 1, 3, 9, 0),
        3,
    )
    assert (
        occurrence_after(until, anchor=utc(2026, 1, 3, 9, 0), anchor_index=3, after=utc(2026, 1, 3, 9))
        is None
    )


def test_naive_instants_are_rejected() -> None:
    rec = parse("daily", dtstart=utc(2026, 1, 1, 9, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        occurrence_after(rec, anchor=datetime(2026, 1, 1, 9), anchor_index=1, after=utc(2026, 1, 1, 9))
    with pytest.raises(ValueError, match="timezone-aware"):
        Recurrence(rule="FREQ=DAILY", timezone="UTC", dtstart=datetime(2026, 1, 1, 9))


# ----------------------------------------------------------------------------------------------------------
# next_occurrence


def test_schedule_basis_skips_missed_occurrences_and_counts_them() -> None:
    rec = parse("daily", dtstart=utc(2026, 1, 1, 9, 0))
    got = next_occurrence(
        rec, current_due=utc(2026, 1, 1, 9, 0), current_index=1, now=utc(2026, 1, 10, 12, 0)
    )
    assert got == (utc(2026, 1, 11, 9, 0), 11)


def test_schedule_basis_done_early_goes_to_the_next_scheduled_slot() -> None:
    rec = parse("daily", dtstart=utc(2026, 1, 1, 9, 0))
    got = next_occurrence(rec, current_due=utc(2026, 1, 5, 9, 0), current_index=5, now=utc(2026, 1, 2, 8, 0))
    assert got == (utc(2026, 1, 6, 9, 0), 6)


def test_schedule_basis_now_exactly_on_an_occurrence_moves_past_it() -> None:
    rec = parse("daily", dtstart=utc(2026, 1, 1, 9, 0))
    got = next_occurrence(rec, current_due=utc(2026, 1, 1, 9, 0), current_index=1, now=utc(2026, 1, 3, 9, 0))
    assert got == (utc(2026, 1, 4, 9, 0), 4)


def test_schedule_basis_ends_with_count() -> None:
    rec = parse("FREQ=DAILY;COUNT=3", dtstart=utc(2026, 1, 1, 9, 0))
    assert next_occurrence(rec, current_due=utc(2026, 1, 1, 9), current_index=1, now=utc(2026, 2, 1)) is None


def completion(rule: str, **kwargs: object) -> Recurrence:
    return parse(rule, basis="completion", **kwargs)  # type: ignore[arg-type]


def test_completion_before_the_due_time_is_never_rescheduled_for_the_same_day() -> None:
    rec = completion("daily", dtstart=utc(2026, 1, 1, 9, 0))
    got = next_occurrence(
        rec,
        current_due=utc(2026, 1, 5, 9),
        current_index=5,
        now=utc(2026, 1, 5, 8),
        completed_at=utc(2026, 1, 5, 8),
    )
    assert got == (utc(2026, 1, 6, 9, 0), 6)


def test_completion_restarts_the_interval_from_the_completion_day() -> None:
    rec = completion("every 3 days", timezone=NEW_YORK, dtstart=datetime(2026, 1, 1, 9, 0))
    done = local(NEW_YORK, 2026, 1, 10, 15, 0)  # due was Jan 7
    got = next_occurrence(rec, current_due=local(NEW_YORK, 2026, 1, 7, 9), current_index=3, now=done)
    assert got == (local(NEW_YORK, 2026, 1, 13, 9, 0), 4)


def test_completion_uses_the_local_date_of_completion() -> None:
    rec = completion("every 2 days", timezone=NEW_YORK, dtstart=datetime(2026, 1, 1, 9, 0))
    done = utc(2026, 1, 11, 2, 0)  # still Jan 10 in New York
    got = next_occurrence(rec, current_due=local(NEW_YORK, 2026, 1, 9, 9), current_index=5, now=done)
    assert got == (local(NEW_YORK, 2026, 1, 12, 9, 0), 6)


def test_completion_with_weekdays_goes_to_the_next_matching_day() -> None:
    rec = completion("FREQ=WEEKLY;BYDAY=MO,WE", dtstart=utc(2026, 1, 5, 9, 0))
    tuesday = utc(2026, 1, 13, 20, 0)
    assert next_occurrence(rec, current_due=utc(2026, 1, 12, 9), current_index=3, now=tuesday) == (
        utc(2026, 1, 14, 9, 0),
        4,
    )
    monday_early = utc(2026, 1, 19, 7, 0)  # completes Monday's todo before its 09:00 due time
    assert next_occurrence(rec, current_due=utc(2026, 1, 19, 9), current_index=5, now=monday_early) == (
        utc(2026, 1, 21, 9, 0),
        6,
    )


def test_completion_restart_takes_days_from_the_completion_date() -> None:
    rec = completion("monthly", dtstart=utc(2026, 1, 15, 9, 0))
    got = next_occurrence(rec, current_due=utc(2026, 1, 15, 9), current_index=1, now=utc(2026, 1, 20, 18))
    assert got == (utc(2026, 2, 20, 9, 0), 2)


def test_completion_restart_that_can_never_match_keeps_the_series_days() -> None:
    rec = completion("FREQ=YEARLY;BYMONTH=2", dtstart=utc(2026, 2, 10, 9, 0))
    # Restarted on March 30 the implied day would be February 30.
    got = next_occurrence(rec, current_due=utc(2026, 2, 10, 9), current_index=1, now=utc(2026, 3, 30, 18))
    assert got == (utc(2027, 2, 10, 9, 0), 2)


def test_completion_respects_count_and_until() -> None:
    counted = completion("FREQ=DAILY;COUNT=2", dtstart=utc(2026, 1, 1, 9, 0))
    assert next_occurrence(
        counted, current_due=utc(2026, 1, 1, 9), current_index=1, now=utc(2026, 1, 1, 10)
    ) == (
        utc(2026, 1, 2, 9, 0),
        2,
    )
    assert (
        next_occurrence(counted, current_due=utc(2026, 1, 2, 9), current_index=2, now=utc(2026, 1, 2, 10))
        is None
    )
    until = completion("FREQ=DAILY;UNTIL=20260105T090000Z", dtstart=utc(2026, 1, 1, 9, 0))
    assert (
        next_occurrence(until, current_due=utc(2026, 1, 2, 9), current_index=2, now=utc(2026, 1, 5, 10))
        is None
    )


def test_completed_at_defaults_to_now_and_overrides_it_when_given() -> None:
    rec = completion("daily", dtstart=utc(2026, 1, 1, 9, 0))
    due = utc(2026, 1, 2, 9)
    assert next_occurrence(rec, current_due=due, current_index=2, now=utc(2026, 1, 7, 12)) == (
        utc(2026, 1, 8, 9),
        3,
    )
    assert next_occurrence(
        rec, current_due=due, current_index=2, now=utc(2026, 1, 7, 12), completed_at=utc(2026, 1, 3, 12)
    ) == (utc(2026, 1, 4, 9), 3)


# ----------------------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    ("kwargs", "field", "code"),
    [
        ({"rule": "FREQ=DAILLY"}, "rule", "INVALID_RECURRENCE_RULE"),
        ({"rule": "every fortnight"}, "rule", "INVALID_RECURRENCE_RULE"),
        ({"rule": "DTSTART:20260101T090000Z\nRRULE:FREQ=DAILY"}, "rule", "INVALID_RECURRENCE_RULE"),
        ({"rule": "FREQ=DAILY;DTSTART=20260101T090000Z"}, "rule", "INVALID_RECURRENCE_RULE"),
        ({"rule": "FREQ=DAILY;BYEASTER=0"}, "rule", "INVALID_RECURRENCE_RULE"),
        ({"rule": "FREQ=DAILY;INTERVAL=0"}, "rule", "INVALID_RECURRENCE_RULE"),
        ({"rule": "FREQ=DAILY;COUNT=3;UNTIL=20270101T000000Z"}, "rule", "INVALID_RECURRENCE_RULE"),
        ({"rule": "FREQ=DAILY;COUNT=2;COUNT=3"}, "rule", "INVALID_RECURRENCE_RULE"),
        ({"rule": "FREQ=DAILY;UNTIL=20270231"}, "rule", "INVALID_RECURRENCE_RULE"),
        ({"rule": "FREQ=WEEKLY;BYDAY=2TU"}, "rule", "INVALID_RECURRENCE_RULE"),
        ({"rule": "FREQ=YEARLY;BYMONTH=1;BYDAY=52WE"}, "rule", "INVALID_RECURRENCE_RULE"),
        ({"rule": "FREQ=WEEKLY;BYDAY=XX"}, "rule", "INVALID_RECURRENCE_RULE"),
        ({"rule": "FREQ=MONTHLY;BYMONTHDAY=32"}, "rule", "INVALID_RECURRENCE_RULE"),
        ({"rule": "FREQ=MONTHLY;BYMONTHDAY=0"}, "rule", "INVALID_RECURRENCE_RULE"),
        ({"rule": "FREQ=MONTHLY;BYSETPOS=1"}, "rule", "INVALID_RECURRENCE_RULE"),
        ({"rule": "FREQ=DAILY;BYWEEKNO=3"}, "rule", "INVALID_RECURRENCE_RULE"),
        ({"rule": "FREQ=WEEKLY;BYMONTHDAY=3"}, "rule", "INVALID_RECURRENCE_RULE"),
        ({"rule": "FREQ=MONTHLY;BYYEARDAY=3"}, "rule", "INVALID_RECURRENCE_RULE"),
        ({"rule": "every 0 days"}, "rule", "INVALID_RECURRENCE_RULE"),
        ({"rule": "daily", "timezone": "Mars/Olympus"}, "timezone", "UNKNOWN_TIMEZONE"),
        ({"rule": "daily", "timezone": "../etc/passwd"}, "timezone", "UNKNOWN_TIMEZONE"),
        ({"rule": "FREQ=DAILY;UNTIL=20251231T000000Z"}, "dtstart", "UNTIL_BEFORE_DTSTART"),
        ({"rule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"}, "rule", "RULE_YIELDS_NOTHING"),
        ({"rule": "FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31"}, "rule", "RULE_YIELDS_NOTHING"),
        ({"rule": "FREQ=MONTHLY;BYMONTHDAY=15;UNTIL=20260110T000000Z"}, "rule", "RULE_YIELDS_NOTHING"),
        ({"rule": "FREQ=HOURLY;INTERVAL=2;BYHOUR=1,3"}, "rule", "RULE_YIELDS_NOTHING"),
        ({"rule": "FREQ=MINUTELY;INTERVAL=30"}, "rule", "RULE_TOO_FREQUENT"),
        ({"rule": "FREQ=MINUTELY;INTERVAL=120"}, "rule", "RULE_TOO_FREQUENT"),
        ({"rule": "FREQ=SECONDLY"}, "rule", "RULE_TOO_FREQUENT"),
        ({"rule": "FREQ=HOURLY;BYMINUTE=0,30"}, "rule", "RULE_TOO_FREQUENT"),
        ({"rule": "FREQ=DAILY;BYHOUR=9;BYMINUTE=0,15"}, "rule", "RULE_TOO_FREQUENT"),
        ({"rule": "FREQ=DAILY;BYHOUR=9,10", "min_interval": timedelta(hours=2)}, "rule", "RULE_TOO_FREQUENT"),
        ({"rule": "daily", "basis": "weekly"}, "basis", "INVALID_BASIS"),
    ],
)
def test_validation_errors_name_the_field_and_code(kwargs: dict[str, object], field: str, code: str) -> None:
    with pytest.raises(RecurrenceError) as caught:
        parse(dtstart=datetime(2026, 1, 5, 0, 0), **kwargs)  # type: ignore[arg-type]
    err = caught.value
    assert (err.field, err.code) == (field, code)
    assert str(err).startswith(f"recurrence.{field}: ")
    assert str(err).endswith(".")
    assert isinstance(err, ValueError)


def test_invalid_rule_message_suggests_valid_forms() -> None:
    with pytest.raises(RecurrenceError) as caught:
        parse("FREQ=DAILLY", dtstart=utc(2026, 1, 5))
    assert str(caught.value).startswith("recurrence.rule: 'FREQ=DAILLY' is not a valid RRULE or pattern")
    assert "try 'daily', 'every 2 weeks' or 'FREQ=WEEKLY;BYDAY=MO,WE'" in str(caught.value)


@pytest.mark.parametrize(
    ("rule", "min_interval"),
    [
        ("FREQ=HOURLY", timedelta(hours=1)),
        ("FREQ=DAILY;BYHOUR=9,9,10", timedelta(hours=1)),
        ("FREQ=MINUTELY;INTERVAL=30", timedelta(seconds=30)),
        ("FREQ=HOURLY;BYMINUTE=0,30", timedelta(minutes=30)),
    ],
)
def test_rules_at_the_minimum_interval_are_allowed(rule: str, min_interval: timedelta) -> None:
    rec = parse(rule, dtstart=utc(2026, 1, 5), min_interval=min_interval)
    got = occurrences(rec, 20)
    assert min(later - earlier for earlier, later in itertools.pairwise(got)) >= min_interval


def test_hourly_series_across_spring_forward_is_not_too_frequent() -> None:
    rec = parse("FREQ=HOURLY", timezone=NEW_YORK, dtstart=datetime(2026, 3, 8, 0, 30))
    assert occurrences(rec, 3) == [utc(2026, 3, 8, 5, 30), utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 7, 30)]


# ----------------------------------------------------------------------------------------------------------
# describe


@pytest.mark.parametrize(
    ("rule", "zone", "start", "text"),
    [
        ("weekdays", NEW_YORK, datetime(2026, 1, 5, 9, 0), "every weekday at 09:00 (America/New_York)"),
        ("every 2 weeks", "UTC", datetime(2026, 1, 6, 18, 30), "every 2 weeks on Tuesday at 18:30 (UTC)"),
        (
            "last day of month",
            "Europe/Paris",
            datetime(2026, 1, 5, 9, 0),
            "every month on the last day at 09:00 (Europe/Paris)",
        ),
        ("FREQ=DAILY;COUNT=3", "UTC", datetime(2026, 1, 5, 7, 0), "daily at 07:00 (UTC), 3 times"),
        ("FREQ=DAILY;COUNT=1", "UTC", datetime(2026, 1, 5, 7, 0), "daily at 07:00 (UTC), once"),
        (
            "FREQ=DAILY;UNTIL=20270131T235959Z",
            "UTC",
            datetime(2026, 1, 5, 7, 0),
            "daily at 07:00 (UTC), until 2027-01-31",
        ),
        ("every 3 days", "UTC", datetime(2026, 1, 5, 7, 5), "every 3 days at 07:05 (UTC)"),
        ("weekly", "UTC", datetime(2026, 1, 9, 8, 0), "every Friday at 08:00 (UTC)"),
        (
            "FREQ=WEEKLY;BYDAY=MO,WE,FR",
            "UTC",
            datetime(2026, 1, 5, 8, 0),
            "every Monday, Wednesday and Friday at 08:00 (UTC)",
        ),
        ("FREQ=DAILY;BYHOUR=9,18;BYMINUTE=0", "UTC", datetime(2026, 1, 5), "daily at 09:00 and 18:00 (UTC)"),
        ("monthly", "UTC", datetime(2026, 1, 15, 9, 0), "every month on the 15th at 09:00 (UTC)"),
        (
            "FREQ=MONTHLY;BYDAY=2TU",
            "UTC",
            datetime(2026, 1, 1, 9, 0),
            "every month on the second Tuesday at 09:00 (UTC)",
        ),
        (
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
            "UTC",
            datetime(2026, 1, 1, 17, 0),
            "every month on the last weekday at 17:00 (UTC)",
        ),
        ("yearly", "UTC", datetime(2026, 3, 14, 9, 0), "every year on March 14 at 09:00 (UTC)"),
        (
            "FREQ=YEARLY;BYMONTH=11;BYDAY=4TH",
            "UTC",
            datetime(2026, 1, 1, 12, 0),
            "every year on the fourth Thursday of November at 12:00 (UTC)",
        ),
        ("FREQ=HOURLY;INTERVAL=3", "UTC", datetime(2026, 1, 1, 0, 15), "every 3 hours at :15 (UTC)"),
        (
            "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO",
            "UTC",
            datetime(2026, 1, 1, 9, 0),
            "every year following FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO, starting 2026-05-11 09:00 (UTC)",
        ),
    ],
)
def test_describe(rule: str, zone: str, start: datetime, text: str) -> None:
    assert describe(parse(rule, timezone=zone, dtstart=start)) == text
