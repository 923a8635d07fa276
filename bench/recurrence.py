"""recurrence: does finding the next occurrence get slower as a series ages?

Times `todos.recurrence.occurrence_after` with the anchor at occurrence #1 and
at occurrence #N (default 10,000) for several rules, next to the naive
approach of asking dateutil's `rrule.after`, which walks from DTSTART every
time. Each figure is the best of several timed batches, in µs per call.
No stack needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from bench.harness import Context, Figure, Goal, Outcome
from todos.recurrence import Recurrence, occurrence_after, occurrences, parse

NAME = "recurrence"
PROFILE = None
ZONE = "America/New_York"
START = datetime(2026, 1, 5, 9, 0)  # a Monday, wall time in ZONE
CASES = (
    ("daily", "FREQ=DAILY"),
    ("weekly MO,WE,FR", "FREQ=WEEKLY;BYDAY=MO,WE,FR"),
    ("monthly last weekday", "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1"),
    ("monthly last day", "FREQ=MONTHLY;BYMONTHDAY=-1"),
)
# Cost independent of the series' age: #N within twice #1's time.
GOAL_RATIO = 2.0


def best_microseconds(call: Callable[[], object], repeats: int, min_batch_seconds: float) -> float:
    """Best per-call time over `repeats` batches, each long enough to swamp timer resolution."""
    number = 1
    while True:
        started = time.perf_counter()
        for _ in range(number):
            call()
        if time.perf_counter() - started >= min_batch_seconds:
            break
        number *= 2
    batches = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(number):
            call()
        batches.append((time.perf_counter() - started) / number)
    return min(batches) * 1e6


def ours(rec: Recurrence, anchor: datetime, index: int) -> Callable[[], tuple[datetime, int] | None]:
    return lambda: occurrence_after(rec, anchor=anchor, anchor_index=index, after=anchor)


def naive(rule: str, anchor: datetime) -> Callable[[], datetime | None]:
    zone = ZoneInfo(ZONE)
    expanded = rrulestr(f"DTSTART:{START:%Y%m%dT%H%M%S}\nRRULE:{rule}")
    anchor_wall = anchor.astimezone(zone).replace(tzinfo=None)

    def call() -> datetime | None:
        found = expanded.after(anchor_wall)
        return None if found is None else found.replace(tzinfo=zone).astimezone(UTC)

    return call


def run(ctx: Context) -> Outcome:
    index, repeats, batch = (1_000, 2, 0.02) if ctx.quick else (10_000, 5, 0.2)
    conditions = {"late_index": index, "timezone": ZONE, "repeats": repeats, "min_batch_s": batch}
    figures: list[Figure] = []
    rows: list[dict[str, Any]] = []
    for name, rule in CASES:
        rec = parse(rule, timezone=ZONE, dtstart=START)
        series = occurrences(rec, index + 1)
        first, late = series[0], series[index - 1]
        # The two approaches must agree before their speed is worth comparing.
        for anchor, position in ((first, 1), (late, index)):
            if ours(rec, anchor, position)() != (series[position], position + 1):
                raise SystemExit(f"recurrence: occurrence_after disagrees with the expansion for {name}")
            if naive(rule, anchor)() != series[position]:
                raise SystemExit(f"recurrence: dateutil disagrees with the expansion for {name}")
        at_1 = best_microseconds(ours(rec, first, 1), repeats, batch)
        at_n = best_microseconds(ours(rec, late, index), repeats, batch)
        walk_1 = best_microseconds(naive(rule, first), repeats, batch)
        walk_n = best_microseconds(naive(rule, late), repeats, batch)
        rows.append(
            {"rule": name, "rrule": rule, "ours_us": [at_1, at_n], "dateutil_walk_us": [walk_1, walk_n]}
        )
        cond = {**conditions, "rule": rule}
        figures += [
            Figure(f"{name}: next after #1", at_1, "us", cond),
            Figure(f"{name}: next after #{index:,}", at_n, "us", cond),
            Figure(
                f"{name}: #{index:,} / #1",
                at_n / at_1,
                "ratio",
                cond,
                Goal("<=", GOAL_RATIO),
                note=f"dateutil walk: {walk_n / walk_1:.0f}x",
            ),
        ]
    return Outcome(figures, {"rules": rows})
