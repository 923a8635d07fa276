"""RFC 5545 text as the feed writes it: escaping, folding, durations, and a
VTIMEZONE that gives every instant of its span the zone's own offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
from hypothesis import given
from hypothesis import strategies as st

from todos.calendar.ics import CRLF, Component, document, duration, fold, text, vtimezone

pytestmark = pytest.mark.unit


def test_text_escapes_what_rfc_5545_reserves() -> None:
    assert text("a\\b;c,d\ne\r\nf") == "a\\\\b\\;c\\,d\\ne\\nf"


@given(st.text(min_size=0, max_size=400))
def test_a_folded_line_has_no_physical_line_over_75_octets_and_unfolds_to_itself(value: str) -> None:
    line = "SUMMARY:" + text(value)
    folded = fold(line)
    assert all(len(part.encode()) <= 75 for part in folded.split(CRLF))
    assert folded.replace(CRLF + " ", "") == line


@pytest.mark.parametrize(
    ("offset", "written"),
    [
        (timedelta(minutes=-15), "-PT15M"),
        (timedelta(days=-1, hours=-2), "-P1DT2H"),
        (timedelta(seconds=90), "PT1M30S"),
        (timedelta(0), "PT0S"),
    ],
)
def test_durations(offset: timedelta, written: str) -> None:
    assert duration(offset) == written


@pytest.mark.parametrize("name", ["Europe/Paris", "Australia/Lord_Howe", "America/Santiago", "Asia/Tokyo"])
def test_the_vtimezone_gives_each_instant_its_zones_offset(name: str) -> None:
    zone = ZoneInfo(name)
    root = Component("VCALENDAR").add("VERSION", "2.0").add("PRODID", "test")
    root.children.append(vtimezone(zone, 2025, 2030))
    parsed = icalendar.Calendar.from_ical(document(root)).walk("VTIMEZONE")[0].to_tz()
    for hours in range(0, 5 * 365 * 24, 37):
        instant = datetime(2025, 1, 2, tzinfo=UTC) + timedelta(hours=hours)
        assert instant.astimezone(parsed).utcoffset() == instant.astimezone(zone).utcoffset(), instant
