"""Weekdays in words: the patterns people type for weekly and monthly rules
become the RRULE the task shows, and the preview's sentence reads back what
was understood."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from todos.series.recurrence import RecurrenceError, describe, occurrences, parse

pytestmark = pytest.mark.unit

NEW_YORK = "America/New_York"
# Tuesday 2026-12-01 09:00 in New York.
START = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "rule", "sentence"),
    [
        ("every other tuesday", "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU", "every 2 weeks on Tuesday at 09:00"),
        ("every 2nd and 4th thursday", "FREQ=MONTHLY;BYDAY=2TH,4TH", "the second Thursday and the fourth"),
        ("first monday of the month", "FREQ=MONTHLY;BYDAY=1MO", "every month on the first Monday at 09:00"),
        ("last friday of the month", "FREQ=MONTHLY;BYDAY=-1FR", "every month on the last Friday at 09:00"),
        (
            "last weekday of the month",
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
            "every month on the last weekday at 09:00",
        ),
        ("every weekend", "FREQ=WEEKLY;BYDAY=SA,SU", "every Saturday and Sunday at 09:00"),
        (
            "every mon, wed and fri",
            "FREQ=WEEKLY;BYDAY=MO,WE,FR",
            "every Monday, Wednesday and Friday at 09:00",
        ),
        ("Every Other Mon & Fri", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR", "every 2 weeks on Monday and Friday"),
        ("mondays and thursdays", "FREQ=WEEKLY;BYDAY=MO,TH", "every Monday and Thursday at 09:00"),
        (
            "every first and third monday",
            "FREQ=MONTHLY;BYDAY=1MO,3MO",
            "the first Monday and the third Monday",
        ),
        (
            "second last friday of the month",
            "FREQ=MONTHLY;BYDAY=-2FR",
            "every month on the second-to-last Friday",
        ),
    ],
)
def test_a_pattern_becomes_its_rrule_and_reads_back(text: str, rule: str, sentence: str) -> None:
    rec = parse(text, timezone=NEW_YORK, dtstart=START)
    assert rec.rule == rule
    assert sentence.lower() in describe(rec).lower()


def test_the_occurrences_are_the_days_the_words_name() -> None:
    second_and_fourth = occurrences(parse("every 2nd and 4th thursday", timezone=NEW_YORK, dtstart=START), 4)
    assert [d.day for d in second_and_fourth] == [10, 24, 14, 28]  # December 2026, then January 2027
    last_weekday = occurrences(parse("last weekday of the month", timezone=NEW_YORK, dtstart=START), 3)
    assert [(d.month, d.day) for d in last_weekday] == [(12, 31), (1, 29), (2, 26)]
    other_tuesday = occurrences(parse("every other tuesday", timezone=NEW_YORK, dtstart=START), 3)
    assert [d.day for d in other_tuesday] == [1, 15, 29]


@pytest.mark.parametrize(
    "text",
    [
        "every blue moon",
        "every 2nd",
        "every monday of the month",
        "every other 2nd monday",
        "2nd monday and friday",
    ],
)
def test_words_it_cannot_read_are_refused_naming_the_rule(text: str) -> None:
    with pytest.raises(RecurrenceError) as refused:
        parse(text, timezone=NEW_YORK, dtstart=START)
    assert refused.value.field == "rule" and refused.value.code == "INVALID_RECURRENCE_RULE"
