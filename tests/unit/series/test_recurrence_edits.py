"""The next occurrence of a series whose current occurrence a user moved:
before the series' start, earlier or later than its slot in the rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from todos.series.recurrence import next_occurrence, occurrence_after, parse

pytestmark = pytest.mark.unit


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


DAILY_NINE = parse("daily", dtstart=utc(2026, 12, 1, 9, 0))


def test_an_anchor_edited_to_before_the_start_still_gives_the_next_occurrence() -> None:
    """Earlier versions stored the edited due date as the anchor; 08:30 on the
    first day of a daily 09:00 series raised inside the workflow and failed it."""
    moved = utc(2026, 12, 1, 8, 30)
    assert occurrence_after(DAILY_NINE, anchor=moved, anchor_index=1, after=utc(2026, 12, 1, 8, 35)) == (
        utc(2026, 12, 2, 9, 0),
        2,
    )
    assert next_occurrence(DAILY_NINE, current_due=moved, current_index=1, now=utc(2026, 12, 1, 8, 35)) == (
        utc(2026, 12, 2, 9, 0),
        2,
    )


def test_an_occurrence_moved_earlier_is_not_followed_by_its_own_slot() -> None:
    """Today's 09:00 done at 08:35 after a move to 08:30: the next is tomorrow's, not today's 09:00."""
    got = next_occurrence(
        DAILY_NINE,
        current_due=utc(2026, 12, 1, 9, 0),
        current_index=1,
        now=utc(2026, 12, 1, 8, 35),
        moved_due=utc(2026, 12, 1, 8, 30),
    )
    assert got == (utc(2026, 12, 2, 9, 0), 2)


def test_an_occurrence_moved_later_is_followed_by_the_first_slot_after_it() -> None:
    """Moved from Dec 1 to Dec 4 10:00 and done then: Dec 5, the slots passed counted for COUNT."""
    got = next_occurrence(
        DAILY_NINE,
        current_due=utc(2026, 12, 1, 9, 0),
        current_index=1,
        now=utc(2026, 12, 4, 10, 5),
        moved_due=utc(2026, 12, 4, 10, 0),
    )
    assert got == (utc(2026, 12, 5, 9, 0), 5)


def test_a_moved_occurrence_of_a_counted_series_ends_it_on_time() -> None:
    counted = parse("FREQ=DAILY;COUNT=2", dtstart=utc(2026, 12, 1, 9, 0))
    assert (
        next_occurrence(
            counted,
            current_due=utc(2026, 12, 2, 9, 0),
            current_index=2,
            now=utc(2026, 12, 2, 8, 35),
            moved_due=utc(2026, 12, 2, 8, 30),
        )
        is None
    )
