"""todo_series_active: counted in the database at scrape time, cached, and
absent (never a false zero) when it cannot be counted."""

from __future__ import annotations

import pytest

from tests.helpers import ManualClock
from todos.core.metrics import SeriesActive

pytestmark = pytest.mark.unit


def samples(collector: SeriesActive) -> dict[str, float]:
    return {s.labels["status"]: s.value for family in collector.collect() for s in family.samples}


def test_counts_are_cached_for_the_ttl_and_every_status_is_reported() -> None:
    clock, calls = ManualClock(), []

    def count() -> dict[str, int]:
        calls.append(clock.now)
        return {"active": 3}

    collector = SeriesActive(ttl=10, clock=clock)
    collector.count_with(count)
    assert samples(collector) == {"active": 3, "paused": 0}
    clock.now = 9
    assert samples(collector) == {"active": 3, "paused": 0}
    clock.now = 10
    samples(collector)
    assert calls == [0, 10]


def test_a_failed_count_is_absent_not_zero_and_retried_after_the_ttl() -> None:
    clock, results = ManualClock(), [RuntimeError("database down"), {"paused": 1}]

    def count() -> dict[str, int]:
        result = results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result

    collector = SeriesActive(ttl=5, clock=clock)
    collector.count_with(count)
    assert samples(collector) == {}
    clock.now = 5
    assert samples(collector) == {"active": 0, "paused": 1}


def test_a_process_without_a_source_reports_nothing_but_declares_the_name() -> None:
    collector = SeriesActive()
    assert samples(collector) == {}
    assert [family.name for family in collector.describe()] == ["todo_series_active"]
