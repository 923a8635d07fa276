"""The public computations: validating a rule, previewing it, listing its occurrences and finding the
occurrence that follows the current one."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from dateutil.rrule import MINUTELY, SECONDLY

from todos.series.recurrence.budget import Budget, BudgetExceeded
from todos.series.recurrence.engine import (
    Engine,
    build_engine,
    cached_engine,
    engine_for,
    indexed,
    instant_of,
    pin_times,
    require_aware,
    stream,
    to_utc,
    to_wall,
    zone_of,
)
from todos.series.recurrence.rules import (
    BASES,
    FREQ_NAMES,
    GAP_SAMPLE,
    HORIZON_YEARS,
    MAX_EXCEPTIONS,
    Recurrence,
    RecurrenceError,
    format_rule,
    parse_rule_text,
    shown,
)

# ----------------------------------------------------------------------------------------------------
# Public API


def parse(
    rule: str,
    *,
    timezone: str = "UTC",
    dtstart: datetime,
    basis: str = "schedule",
    min_interval: timedelta = timedelta(hours=1),
    budget: Budget | None = None,
    exdates: Sequence[datetime] = (),
    rdates: Sequence[datetime] = (),
) -> Recurrence:
    """Validate a rule (RRULE text or a simple English pattern) and anchor it at its first occurrence.

    ``exdates`` and ``rdates`` without an offset are wall times in ``timezone``. With a ``budget`` (request
    paths), a rule whose first occurrences take more expansion work than it has left is refused as
    RULE_TOO_SPARSE.
    """
    rec, _ = _parse(rule, timezone, dtstart, basis, min_interval, budget)
    if not exdates and not rdates:
        return rec
    return with_exceptions(rec, exdates=exdates, rdates=rdates)


def with_exceptions(
    rec: Recurrence, *, exdates: Sequence[datetime] = (), rdates: Sequence[datetime] = ()
) -> Recurrence:
    """``rec`` with these EXDATEs and RDATEs (wall times in its zone when naive), checked."""
    zone = zone_of(rec.timezone)
    if rec.basis == "completion":
        field = "exdates" if exdates else "rdates"
        raise RecurrenceError(
            field,
            "EXCEPTIONS_NEED_SCHEDULE",
            f"recurrence.{field}: a series with basis 'completion' has no calendar dates to exclude or "
            "add (each one follows the last completion); use basis 'schedule'.",
        )
    instants = {
        name: tuple(sorted({instant_of(moment, zone) for moment in given}))
        for name, given in (("exdates", exdates), ("rdates", rdates))
    }
    for name, moments in instants.items():
        if len(moments) > MAX_EXCEPTIONS:
            raise RecurrenceError(
                name,
                "TOO_MANY_EXCEPTIONS",
                f"recurrence.{name}: {len(moments)} dates; a series keeps at most {MAX_EXCEPTIONS}.",
            )
    if instants["rdates"] and instants["rdates"][0] < rec.dtstart:
        raise RecurrenceError(
            "rdates",
            "RDATE_BEFORE_START",
            f"recurrence.rdates: {instants['rdates'][0]:%Y-%m-%dT%H:%M:%SZ} is before the series' first "
            f"occurrence {rec.dtstart:%Y-%m-%dT%H:%M:%SZ}; a series starts at its first occurrence.",
        )
    if rec.dtstart in instants["exdates"]:
        raise RecurrenceError(
            "exdates",
            "EXDATE_IS_START",
            f"recurrence.exdates: {rec.dtstart:%Y-%m-%dT%H:%M:%SZ} is the series' first occurrence, the task "
            "itself; start the series at a later date instead.",
        )
    return replace(rec, exdates=instants["exdates"], rdates=instants["rdates"])


def preview(
    rule: str,
    *,
    timezone: str = "UTC",
    dtstart: datetime,
    limit: int,
    min_interval: timedelta = timedelta(hours=1),
    budget: Budget | None = None,
) -> tuple[Recurrence, list[datetime]]:
    """``parse()`` and the rule's first ``limit`` occurrences, as ``occurrences()`` lists them.

    The occurrences parse() checks are the series' first ones, so the list continues after them instead of
    expanding them twice: a third less work for a preview of 100.
    """
    rec, sample = _parse(rule, timezone, dtstart, "schedule", min_interval, budget)
    listed: list[datetime] = []
    for _, instant in sample:
        # As occurrences() does: wall times in a DST gap can land on the instant of the next one.
        if not listed or instant > listed[-1]:
            listed.append(instant)
    count = engine_for(rec).rule.count
    if len(listed) >= limit or (count is not None and len(sample) >= count):
        return rec, listed[: max(limit, 0)]
    try:
        _list_into(listed, rec, limit, listed[-1], budget)
    except BudgetExceeded as spent:
        raise _too_sparse(
            rule, f"to list {limit} occurrences", len(listed), spent, fewer_helps=True
        ) from None
    return rec, listed


def _parse(
    rule: str, timezone: str, dtstart: datetime, basis: str, min_interval: timedelta, budget: Budget | None
) -> tuple[Recurrence, list[tuple[datetime, datetime]]]:
    """parse(), and the first occurrences it checked (wall time, instant)."""
    basis_value = BASES.get(basis.strip().lower())
    if basis_value is None:
        raise RecurrenceError(
            "basis",
            "INVALID_BASIS",
            f"recurrence.basis: {shown(basis)} is not a valid basis; use 'schedule' or 'completion'.",
        )
    zone = zone_of(timezone)
    parsed = parse_rule_text(rule)
    start_wall = (to_wall(dtstart, zone) if dtstart.tzinfo is not None else dtstart).replace(microsecond=0)
    engine = build_engine(parsed, zone, start_wall)
    until = engine.rule.until
    if until is not None and until < engine.start:
        raise RecurrenceError(
            "dtstart",
            "UNTIL_BEFORE_DTSTART",
            f"recurrence.dtstart: the start {engine.start:%Y-%m-%dT%H:%M:%SZ} is after the rule's UNTIL "
            f"{until:%Y-%m-%dT%H:%M:%SZ}; start earlier or move UNTIL later.",
        )
    if parsed.freq in (MINUTELY, SECONDLY) and min_interval >= timedelta(minutes=1):
        raise _too_frequent(rule, f"FREQ={FREQ_NAMES[parsed.freq]} repeats within minutes", min_interval)

    sample = _first_occurrences(engine, rule, budget)
    if not sample:
        raise _yields_nothing(rule, start_wall, timezone)
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(sample)]
    if gaps and min(gaps) < min_interval:
        raise _too_frequent(rule, f"it repeats as often as every {_duration(min(gaps))}", min_interval)

    first_wall, first = sample[0]
    # The stored start is an instant. If the first occurrence sits in a spring-forward gap, its instant reads
    # back as a different wall time, which would change the implied time of day: write the time out instead.
    # (For sub-daily rules with INTERVAL > 1 the phase then follows the shifted hour.)
    if to_wall(first, zone) != first_wall:
        parsed = pin_times(parsed, first_wall)
    rec = Recurrence(
        rule=format_rule(replace(parsed, until=until)), timezone=zone.key, dtstart=first, basis=basis_value
    )
    return rec, sample


def _first_occurrences(engine: Engine, rule: str, budget: Budget | None) -> list[tuple[datetime, datetime]]:
    count = engine.rule.count
    size = GAP_SAMPLE if count is None else min(count, GAP_SAMPLE)
    sample: list[tuple[datetime, datetime]] = []
    try:
        for found in stream(engine, engine.start, bounded=True, budget=budget):
            sample.append(found)
            if len(sample) == size:
                break
    except BudgetExceeded as spent:
        if not sample and spent.reached and spent.reached >= engine.start_wall.year + HORIZON_YEARS:
            raise _yields_nothing(rule, engine.start_wall, engine.zone.key) from None
        raise _too_sparse(rule, "to be checked", len(sample), spent) from None
    return sample


def _yields_nothing(rule: str, start_wall: datetime, timezone: str) -> RecurrenceError:
    return RecurrenceError(
        "rule",
        "RULE_YIELDS_NOTHING",
        f"recurrence.rule: {shown(rule)} produces no occurrence in the {HORIZON_YEARS} years from "
        f"{start_wall:%Y-%m-%d %H:%M} ({timezone}) on; check that the BYMONTH/BYMONTHDAY/BYDAY "
        "combination exists and that COUNT or UNTIL leaves room for it.",
    )


def _too_sparse(
    rule: str, purpose: str, found: int, spent: BudgetExceeded, *, fewer_helps: bool = False
) -> RecurrenceError:
    seen = f"only {found} occurrence{'s' if found != 1 else ''}" if found else "no occurrence"
    until = f" up to {spent.reached}" if spent.reached else ""
    fewer = ", or ask for fewer occurrences" if fewer_helps and found else ""
    return RecurrenceError(
        "rule",
        "RULE_TOO_SPARSE",
        f"recurrence.rule: {shown(rule)} yields too rarely {purpose} ({seen}{until} within the work one "
        f"request may do); use a coarser FREQ or fewer BY filters{fewer}.",
    )


def _too_frequent(rule: str, why: str, min_interval: timedelta) -> RecurrenceError:
    return RecurrenceError(
        "rule",
        "RULE_TOO_FREQUENT",
        f"recurrence.rule: {shown(rule)} is too frequent ({why}, the minimum gap is "
        f"{_duration(min_interval)}); use a coarser FREQ, a larger INTERVAL or fewer BYHOUR/BYMINUTE values.",
    )


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds and seconds % size == 0:
            amount = seconds // size
            return f"{amount} {unit}{'s' if amount != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def occurrences(
    rec: Recurrence, limit: int, *, after: datetime | None = None, budget: Budget | None = None
) -> list[datetime]:
    """Up to ``limit`` occurrences (aware UTC) strictly after ``after`` (or from #1), in increasing order.

    With a ``budget`` (request paths), running out of it before ``limit`` occurrences is RULE_TOO_SPARSE.
    """
    if after is not None:
        require_aware(after=after)
    listed: list[datetime] = []
    try:
        _list_into(listed, rec, limit, after, budget)
    except BudgetExceeded as spent:
        raise _too_sparse(
            rec.rule, f"to list {limit} occurrences", len(listed), spent, fewer_helps=True
        ) from None
    return listed


def _list_into(
    listed: list[datetime], rec: Recurrence, limit: int, after: datetime | None, budget: Budget | None
) -> None:
    """Append the occurrences after ``after`` (or from #1) to ``listed`` until it holds ``limit``; what it
    appended stays there when the budget runs out."""
    engine = engine_for(rec)
    found: Iterator[tuple[datetime, int]]
    if after is None or after < rec.dtstart or engine.rule.count is not None:
        # COUNT can only be honoured by knowing how many occurrences came before.
        found = indexed(engine, anchor=rec.dtstart, anchor_index=0, anchor_is_occurrence=False, budget=budget)
    else:
        found = ((t, 0) for _, t in stream(engine, after, budget=budget))  # the index is not used here
    if len(listed) >= limit:
        return
    for instant, _ in in_set(rec, found, after=after, index_before=0):
        # Drops instants already listed: wall times in a DST gap can land on the same instant as the next one.
        if (after is None or instant > after) and (not listed or instant > listed[-1]):
            listed.append(instant)
            if len(listed) >= limit:
                return


def occurrence_after(
    rec: Recurrence, *, anchor: datetime, anchor_index: int, after: datetime
) -> tuple[datetime, int] | None:
    """The first occurrence strictly after ``after``, knowing that ``anchor`` is occurrence ``anchor_index``.

    Expansion restarts at the period holding the anchor, so the cost does not depend on ``anchor_index``.
    If the anchor is not actually an occurrence (a due date edited by hand), the answer is still the first
    occurrence after ``after``, numbered as if the anchor were one.
    """
    if anchor_index < 1:
        raise ValueError("anchor_index is 1-based")
    return next(_upcoming(rec, anchor=anchor, anchor_index=anchor_index, after=after), None)


def _upcoming(
    rec: Recurrence, *, anchor: datetime, anchor_index: int, after: datetime, budget: Budget | None = None
) -> Iterator[tuple[datetime, int]]:
    require_aware(anchor=anchor, after=after)
    if anchor < rec.dtstart:
        # A due date edited to before the series' start (stored as the anchor by
        # earlier versions): it still stands for an occurrence, the first slot at the
        # earliest, and what follows it comes after that slot.
        anchor, after = rec.dtstart, max(after, rec.dtstart)
    if after < anchor:
        # Occurrences between `after` and the anchor can only be numbered by walking from the series start.
        anchor, anchor_index, known = rec.dtstart, 0, False
    else:
        known = True
    candidates = indexed(
        engine_for(rec), anchor=anchor, anchor_index=anchor_index, anchor_is_occurrence=known, budget=budget
    )
    in_order = in_set(rec, candidates, after=after, index_before=anchor_index)
    return (found for found in in_order if found[0] > after)


def upcoming(
    rec: Recurrence,
    *,
    anchor: datetime,
    anchor_index: int,
    after: datetime,
    limit: int,
    budget: Budget | None = None,
) -> list[tuple[datetime, int]]:
    """The first ``limit`` occurrences strictly after ``after``, as ``occurrence_after`` would find them
    one after the other (a "schedule" series; a "completion" one has no dates before its completions).
    With a ``budget``, what was found when it ran out."""
    listed: list[tuple[datetime, int]] = []
    try:
        for found in _upcoming(rec, anchor=anchor, anchor_index=anchor_index, after=after, budget=budget):
            if len(listed) >= limit:
                break
            # Wall times in a DST gap can land on the instant of the next one: it is one occurrence.
            if not listed or found[0] > listed[-1][0]:
                listed.append(found)
    except BudgetExceeded:
        pass
    return listed


def in_set(
    rec: Recurrence,
    rule_occurrences: Iterator[tuple[datetime, int]],
    *,
    after: datetime | None,
    index_before: int,
) -> Iterator[tuple[datetime, int]]:
    """The recurrence set from the rule's occurrences (instant, index; in order, from before ``after`` on):
    less EXDATEs, merged with the RDATEs after ``after``. An RDATE carries the index of the rule's occurrence
    before it, ``index_before`` if none is: COUNT bounds the rule, not the set, as RFC 5545 has it."""
    if not rec.exdates and not rec.rdates:
        yield from rule_occurrences
        return
    excluded = set(rec.exdates)
    rdates = iter([r for r in rec.rdates if (after is None or r > after) and r not in excluded])
    rdate = next(rdates, None)
    last = index_before
    for instant, index in rule_occurrences:
        while rdate is not None and rdate <= instant:
            if rdate < instant:  # one on a rule occurrence is that occurrence
                yield rdate, last
            rdate = next(rdates, None)
        last = index
        if instant not in excluded:
            yield instant, index
    while rdate is not None:
        yield rdate, last
        rdate = next(rdates, None)


def next_occurrence(
    rec: Recurrence,
    *,
    current_due: datetime,
    current_index: int,
    now: datetime,
    completed_at: datetime | None = None,
    moved_due: datetime | None = None,
) -> tuple[datetime, int] | None:
    """The occurrence that follows the current one, or None when COUNT/UNTIL is used up.

    ``current_due`` is the current occurrence's slot in the rule (occurrence ``current_index``) and
    ``moved_due`` its due time when a user moved it off that slot.

    "schedule": the first occurrence after the slot, the moved due time and now; missed ones are skipped (and
    counted in the index) rather than stacked, and a moved occurrence is not followed by its own slot.
    "completion": the rule restarts on the local day of completion at the series' time of day, and the next
    occurrence is never that restart point itself.
    """
    require_aware(current_due=current_due, now=now)
    if rec.basis == "schedule":
        after = max(current_due, now) if moved_due is None else max(current_due, moved_due, now)
        return occurrence_after(rec, anchor=current_due, anchor_index=current_index, after=after)

    done = now if completed_at is None else completed_at
    require_aware(completed_at=done)
    engine = engine_for(rec)
    if engine.rule.count is not None and current_index >= engine.rule.count:
        return None
    restart_wall = datetime.combine(to_wall(done, engine.zone).date(), engine.start_wall.time())
    restart = to_utc(restart_wall, engine.zone)
    # The restart takes absent day parts from the restart date, as a new DTSTART would: "monthly" becomes a
    # month after completion. Should that make the rule impossible (FREQ=YEARLY;BYMONTH=2 restarted on the
    # 30th), keep the series' own days (engine.rule has them pinned) rather than silently end the series.
    found = _first_after_restart(cached_engine(rec.rule, rec.timezone, restart_wall), restart, done)
    if found is None:
        found = _first_after_restart(build_engine(engine.rule, engine.zone, restart_wall), restart, done)
    return None if found is None else (found, current_index + 1)


def _first_after_restart(restarted: Engine, restart: datetime, done: datetime) -> datetime | None:
    candidates = stream(restarted, max(restart, done), bounded=True)
    return next((instant for _, instant in candidates if instant > done and instant != restart), None)
