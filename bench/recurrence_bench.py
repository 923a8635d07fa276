"""Benchmark: does finding the next occurrence get slower as a series ages?

Times ``todos.recurrence.occurrence_after`` with the anchor at occurrence #1 and at occurrence #N (default
10,000), next to the naive approach of asking dateutil ``rrule.after``, which walks from DTSTART every time.
Each figure is the best of several timed batches (timeit-style, ``time.perf_counter``), in µs per call.

    python bench/recurrence_bench.py
    python bench/recurrence_bench.py --index 5000 --json /tmp/recurrence.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from todos.recurrence import Recurrence, occurrence_after, occurrences, parse

ZONE = "America/New_York"
START = datetime(2026, 1, 5, 9, 0)  # a Monday, wall time in ZONE
CASES = (
    ("daily", "FREQ=DAILY"),
    ("weekly BYDAY=MO,WE,FR", "FREQ=WEEKLY;BYDAY=MO,WE,FR"),
    ("monthly last weekday (BYSETPOS=-1)", "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1"),
    ("monthly last day (BYMONTHDAY=-1)", "FREQ=MONTHLY;BYMONTHDAY=-1"),
)


def best_microseconds(call: Callable[[], object], repeats: int, min_batch_seconds: float) -> float:
    """Best per-call time over ``repeats`` batches, each long enough to swamp timer resolution."""
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


def run(index: int, repeats: int, min_batch_seconds: float) -> list[dict[str, Any]]:
    results = []
    for name, rule in CASES:
        rec = parse(rule, timezone=ZONE, dtstart=START)
        series = occurrences(rec, index + 1)
        first, late = series[0], series[index - 1]
        # The two approaches must agree before their speed is worth comparing.
        for anchor, position in ((first, 1), (late, index)):
            assert ours(rec, anchor, position)() == (series[position], position + 1), name
            assert naive(rule, anchor)() == series[position], name
        row: dict[str, Any] = {
            "rule": name,
            "rrule": rule,
            "index": index,
            "ours_us_at_1": best_microseconds(ours(rec, first, 1), repeats, min_batch_seconds),
            "ours_us_at_n": best_microseconds(ours(rec, late, index), repeats, min_batch_seconds),
            "walk_us_at_1": best_microseconds(naive(rule, first), repeats, min_batch_seconds),
            "walk_us_at_n": best_microseconds(naive(rule, late), repeats, min_batch_seconds),
        }
        row["ours_ratio"] = row["ours_us_at_n"] / row["ours_us_at_1"]
        row["walk_ratio"] = row["walk_us_at_n"] / row["walk_us_at_1"]
        results.append(row)
    return results


def markdown(results: list[dict[str, Any]]) -> str:
    n = f"#{results[0]['index']:,}"
    lines = [
        f"| rule | ours µs @#1 | ours µs @{n} | ours ratio "
        f"| dateutil walk µs @#1 | walk µs @{n} | walk ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines.extend(
        f"| {row['rule']} | {row['ours_us_at_1']:.1f} | {row['ours_us_at_n']:.1f} | {row['ours_ratio']:.2f}x "
        f"| {row['walk_us_at_1']:.1f} | {row['walk_us_at_n']:.1f} | {row['walk_ratio']:.0f}x |"
        for row in results
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--index", type=int, default=10_000, help="late anchor's occurrence number (default 10000)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed batches per figure; the best counts")
    parser.add_argument(
        "--min-batch-seconds", type=float, default=0.2, help="grow each batch until it lasts this long"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args()
    if args.index < 2:
        parser.error("--index must be at least 2")

    results = run(args.index, args.repeats, args.min_batch_seconds)
    print(markdown(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
