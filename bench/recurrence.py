"""recurrence: does finding the next occurrence get slower as a series ages? What may a preview cost?

Times `todos.series.recurrence.occurrence_after` with the anchor at occurrence #1 and
at occurrence #N (default 10,000) for several rules, next to the naive
approach of asking dateutil's `rrule.after`, which walks from DTSTART every
time. Each figure is the best of several timed batches, in µs per call.

Then the CPU of the anonymous `POST /v1/recurrence/preview` (check the rule,
list 100 occurrences, describe it) and of the check alone (`parse`, as at
create and update), as the service runs them with a work budget: the worst
over pathological rules and over a seeded sample of random rules, next to the
same calls of todos/recurrence.py as it was before the budget (BASELINE, read
from git; not in --quick runs, where it alone would take tens of seconds).
Each "after" figure is the best of three runs per rule, then the worst rule;
the CPU per 1,000 units spent shows how closely the budget's units follow
CPU time. No stack needed.
"""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from bench.harness import Context, Figure, Goal, Outcome
from devstack.paths import REPO_ROOT
from todos.series.recurrence import (
    Budget,
    Recurrence,
    RecurrenceError,
    describe,
    occurrence_after,
    occurrences,
    parse,
)
from todos.series.recurrence import preview as budgeted_preview
from todos.series.recurrence.budget import REQUEST_UNITS

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

# The last commit before the preview's budget: what "before" runs.
BASELINE = "c9732bd"
PREVIEW_START = datetime(2026, 12, 1, 9, 0)  # wall time in ZONE
PREVIEW_LIMIT = 100
# What no request may exceed (the target), in seconds of CPU.
GOAL_CPU = 0.020
PATHOLOGICAL = (
    "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;BYHOUR=9",
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",
    "FREQ=YEARLY;BYMONTH=2;BYDAY=5MO",
    "FREQ=YEARLY;BYYEARDAY=366;BYDAY=MO",
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=HOURLY;BYMONTHDAY=31;BYMONTH=2",
    "FREQ=DAILY;INTERVAL=2;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",
    "FREQ=HOURLY;INTERVAL=5;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;BYSETPOS="
    + ",".join(map(str, [*range(1, 51), *range(-50, 0)])),
)
RANDOM_SEED = 1
WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


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
    ages, previews = next_occurrence_figures(ctx), preview_figures(ctx)
    return Outcome(ages.figures + previews.figures, {**ages.details, "preview": previews.details})


def next_occurrence_figures(ctx: Context) -> Outcome:
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


# ---- what a preview costs ------------------------------------------------------------


def random_rule(rng: random.Random) -> str:
    """An RRULE as a careless client might send: any FREQ and mix of BY parts, ordinals, BYSETPOS, WKST,
    COUNT or UNTIL (many of them refused by the parser, many of them sparse)."""
    freq = rng.choice(["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY"])
    parts = [f"FREQ={freq}"]

    def some(values: list[int], most: int = 3) -> str:
        return ",".join(map(str, rng.sample(values, rng.randint(1, most))))

    if rng.random() < 0.4:
        parts.append(f"INTERVAL={rng.choice([2, 3, 4, 7, 10, 100])}")
    if rng.random() < 0.4:
        parts.append(f"BYMONTH={some(list(range(1, 13)))}")
    if freq == "YEARLY" and rng.random() < 0.2:
        parts.append(f"BYWEEKNO={some([1, 2, 10, 20, 52, 53, -1, -2])}")
    if freq in ("YEARLY", "HOURLY", "MINUTELY") and rng.random() < 0.2:
        parts.append(f"BYYEARDAY={some([1, 59, 60, 100, 200, 365, 366, -1, -366])}")
    if freq != "WEEKLY" and rng.random() < 0.4:
        parts.append(f"BYMONTHDAY={some([1, 2, 13, 15, 28, 29, 30, 31, -1, -2, -7])}")
    if rng.random() < 0.5:
        days = rng.sample(WEEKDAY_CODES, rng.randint(1, 4))
        if freq in ("MONTHLY", "YEARLY") and rng.random() < 0.5:
            days = [f"{rng.choice([1, 2, 3, 4, 5, -1, -2, -5])}{day}" for day in days]
        parts.append("BYDAY=" + ",".join(days))
    if rng.random() < 0.25:
        parts.append(f"BYHOUR={some(list(range(24)))}")
    if rng.random() < 0.1:
        parts.append(f"BYMINUTE={some(list(range(60)))}")
    if rng.random() < 0.3:
        parts.append(f"BYSETPOS={some([1, 2, 3, -1, -2, 10, -10, 100])}")
    if rng.random() < 0.2:
        parts.append(f"WKST={rng.choice(WEEKDAY_CODES)}")
    ending = rng.random()
    if ending < 0.2:
        parts.append(f"COUNT={rng.randint(1, 200)}")
    elif ending < 0.4:
        parts.append(f"UNTIL={rng.randint(2027, 2400)}0101T000000Z")
    return ";".join(parts)


def baseline_engine() -> types.ModuleType | None:
    """todos/recurrence.py as of BASELINE, loaded beside today's; None without git or that commit."""
    shown = subprocess.run(
        ["git", "show", f"{BASELINE}:todos/recurrence.py"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    if shown.returncode != 0:
        return None
    module = types.ModuleType("bench_recurrence_baseline")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(shown.stdout, f"{BASELINE}:todos/recurrence.py", "exec"), module.__dict__)  # noqa: S102
    return module


def cpu_of(call: Callable[[], object]) -> tuple[float, str]:
    """CPU seconds of one call, and how it ended: "200" or the 422's code."""
    started = time.process_time()
    try:
        call()
        outcome = "200"
    except RecurrenceError as error:
        outcome = error.code
    except ValueError as error:  # the baseline's RecurrenceError is its own class, a ValueError too
        outcome = getattr(error, "code", type(error).__name__)
    return time.process_time() - started, outcome


def after(rule: str) -> dict[str, Any]:
    """Today's request paths: the preview and the check, each with its budget (best of three runs)."""
    spent: list[int] = []

    def preview() -> None:
        budget = Budget()
        try:
            rec, _ = budgeted_preview(
                rule, timezone=ZONE, dtstart=PREVIEW_START, limit=PREVIEW_LIMIT, budget=budget
            )
            describe(rec)
        finally:
            spent.append(budget.spent)

    def check() -> None:
        parse(rule, timezone=ZONE, dtstart=PREVIEW_START, budget=Budget())

    previews = [cpu_of(preview) for _ in range(3)]
    return {
        "preview_s": min(cpu for cpu, _ in previews),
        "parse_s": min(cpu_of(check)[0] for _ in range(3)),
        "outcome": previews[0][1],
        "units": spent[0],
    }


def before(engine: types.ModuleType, rule: str) -> dict[str, Any]:
    """The same requests at BASELINE: parse, then occurrences and describe, without a budget (one run)."""

    def preview() -> None:
        rec = engine.parse(rule, timezone=ZONE, dtstart=PREVIEW_START)
        engine.occurrences(rec, PREVIEW_LIMIT)
        engine.describe(rec)

    cpu, outcome = cpu_of(preview)
    return {
        "preview_s": cpu,
        "parse_s": cpu_of(lambda: engine.parse(rule, timezone=ZONE, dtstart=PREVIEW_START))[0],
        "outcome": outcome,
    }


def preview_figures(ctx: Context) -> Outcome:
    sample = 40 if ctx.quick else 300
    rng = random.Random(RANDOM_SEED)
    sets = {
        "pathological rules": list(PATHOLOGICAL),
        f"{sample} random rules": [random_rule(rng) for _ in range(sample)],
    }
    engine = None if ctx.quick else baseline_engine()
    conditions = {
        "timezone": ZONE,
        "dtstart": f"{PREVIEW_START:%Y-%m-%dT%H:%M}",
        "limit": PREVIEW_LIMIT,
        "budget_units": REQUEST_UNITS,
        "random_seed": RANDOM_SEED,
        "baseline": BASELINE,
    }
    figures: list[Figure] = []
    details: dict[str, Any] = {}
    per_unit: list[float] = []
    for label, rules in sets.items():
        rows: list[dict[str, Any]] = [{"rule": rule, "after": after(rule)} for rule in rules]
        if engine is not None:
            for row in rows:
                row["before"] = before(engine, row["rule"])
        figures += worst_figures(label, rows, {**conditions, "rules": len(rules)})
        per_unit += [
            r["after"]["preview_s"] / r["after"]["units"] for r in rows if r["after"]["units"] >= 50_000
        ]
        outcomes: dict[str, int] = {}
        for row in rows:
            outcomes[row["after"]["outcome"]] = outcomes.get(row["after"]["outcome"], 0) + 1
        details[label] = {"outcomes": outcomes, "rules": rows if label == "pathological rules" else None}
    # How closely the units follow CPU: the seconds per unit of every request that spent at least 50,000.
    cond = {**conditions, "requests": len(per_unit)}
    figures += [
        Figure("preview: CPU per 1,000 budget units, median", statistics.median(per_unit) * 1e9, "us", cond),
        Figure("preview: CPU per 1,000 budget units, worst", max(per_unit) * 1e9, "us", cond),
    ]
    return Outcome(figures, details)


def worst_figures(label: str, rows: list[dict[str, Any]], conditions: dict[str, Any]) -> list[Figure]:
    """The worst CPU of the preview and of the check over ``rows``, now and (if measured) before."""
    figures = []
    for key, name in (("preview_s", "preview"), ("parse_s", "parse")):
        for when in ("after", "before"):
            measured = [row for row in rows if when in row]
            if not measured:
                continue
            worst = max(measured, key=lambda row: row[when][key])
            figures.append(
                Figure(
                    f"{name}, worst of {label}: CPU" + (f" before ({BASELINE})" if when == "before" else ""),
                    worst[when][key],
                    "s",
                    conditions,
                    Goal("<=", GOAL_CPU) if when == "after" else None,
                    note=f"{worst['rule'][:60]} ({worst[when]['outcome']})",
                )
            )
    return figures
