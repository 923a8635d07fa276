"""Recurrence engine for recurring todos.

Pure functions over RFC 5545 recurrence rules: no I/O, no clock (callers pass "now"), no Dapr, no database.

Occurrences are computed as wall-clock times in the series' IANA zone and returned as aware UTC instants,
so a 09:00 America/New_York series is 14:00Z in winter and 13:00Z in summer. A wall time inside a
spring-forward gap moves forward by the gap (02:30 -> 03:30) and an ambiguous fall-back wall time takes its
first instance; both are exactly what zoneinfo does for ``fold=0``.

dateutil expands the rule, but always from a *period start* chosen here (see ``engine.Engine``) instead of the
user's start, which buys two things:

* ``occurrence_after`` can re-anchor at any occurrence in O(one period) instead of walking from the series
  start, for every rule shape: the work no longer grows with the occurrence index.
* A weekly BYSETPOS rule selects among the whole week, as RFC 5545 says. dateutil cuts the first week short at
  DTSTART, so "FREQ=WEEKLY;BYDAY=MO,FR;BYSETPOS=1" started on a Wednesday would give that Friday; here it
  gives the next Monday.
"""

from todos.series.recurrence.budget import Budget
from todos.series.recurrence.describe import describe
from todos.series.recurrence.rules import Basis, Recurrence, RecurrenceError
from todos.series.recurrence.schedule import (
    next_occurrence,
    occurrence_after,
    occurrences,
    parse,
    preview,
    upcoming,
    with_exceptions,
)

__all__ = [
    "Basis",
    "Budget",
    "Recurrence",
    "RecurrenceError",
    "describe",
    "next_occurrence",
    "occurrence_after",
    "occurrences",
    "parse",
    "preview",
    "upcoming",
    "with_exceptions",
]
