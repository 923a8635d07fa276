"""Prometheus metrics of the domain (the HTTP ones live in api.metrics).
Names: todo_ prefix, base units, _total counters, bounded labels only."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


def _seeded(counter: Counter, *values: str) -> Counter:
    """A one-label counter with each of its series there from the start, so a
    dashboard shows 0 rather than no data."""
    for value in values:
        counter.labels(value)
    return counter


# ---- tasks and recurring series ----------------------------------------------
TASKS_CREATED = _seeded(
    Counter(
        "todo_tasks_created_total",
        "Tasks created by callers (REST or MCP): `one_off`, or `recurring` (the first occurrence of "
        "a new series). Later occurrences are todo_occurrences_created_total.",
        ["kind"],
    ),
    "one_off",
    "recurring",
)
TASKS_COMPLETED = Counter("todo_tasks_completed_total", "Tasks completed (first completion only).")
TASKS_REOPENED = Counter(
    "todo_tasks_reopened_total", "Completed or skipped tasks made pending again (reopen)."
)
OCCURRENCES_CREATED = Counter(
    "todo_occurrences_created_total", "Next occurrences of recurring series created by workflows."
)
NEXT_OCCURRENCE = Histogram(
    "todo_next_occurrence_seconds",
    "Time the recurrence engine takes to compute a series' next occurrence (in the workflow).",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
SERIES_STEP_ERRORS = Counter(
    "todo_series_step_errors_total",
    "Generations of series workflows that could not compute the next occurrence (they retry on "
    "their timer; the error is in the workflow's custom status).",
)
SPECULATIVE_STEPS = _seeded(
    Counter(
        "todo_series_speculative_steps_total",
        "Next occurrences a completion asked for without reading the series first (step shape 2), by "
        "`outcome`: created; stale (the series had changed: the workflow read it and stepped again); "
        "refused (stopped or its rule changed).",
        ["outcome"],
    ),
    "created",
    "stale",
    "refused",
)
COMPLETION_TO_NEXT = Histogram(
    "todo_completion_to_next_seconds",
    "Time from a recurring task's completion being recorded to its series' next task being committed.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
)
JOB_CALLS_DEFERRED = Counter(
    "todo_job_calls_deferred_total",
    "Dapr job calls not made after a commit because their lane was full; the sweeper makes them.",
)
SWEEPER_REPAIRS = Counter(
    "todo_sweeper_repairs_total",
    "Workflow and Dapr job calls the sweeper repeated after a failure or crash left them undone.",
    ["action"],
)

# ---- database round trips ----------------------------------------------------
DB_STATEMENTS = Counter(
    "todo_db_statements_total",
    "SQL statements this process sent to PostgreSQL (each one a round trip).",
)
DB_TRANSACTIONS = _seeded(
    Counter(
        "todo_db_transactions_total",
        "Transactions this process ended on PostgreSQL, by `outcome` (commit, rollback).",
        ["outcome"],
    ),
    "commit",
    "rollback",
)


class SeriesActive(Collector):
    """`todo_series_active{status}`: live series (active or paused), counted in
    the database when scraped rather than kept in process memory, so it is
    right after restarts and with any number of replicas. Each API replica
    reports the same total: aggregate with max(), never sum(). The count is
    cached for `ttl` seconds so frequent or parallel scrapes cost one query;
    while the database is unreachable (or in a process that does not count,
    like the audit role) the metric is absent rather than a false 0."""

    NAME = "todo_series_active"
    HELP = "Recurring series that are live, by status (active or paused); the same total on every replica."
    STATUSES = ("active", "paused")

    def __init__(self, *, ttl: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._count: Callable[[], Mapping[str, int]] | None = None
        self._cached: Mapping[str, int] | None = None
        self._expires = float("-inf")

    def count_with(self, count: Callable[[], Mapping[str, int]]) -> None:
        """Count with `count` from now on (the latest call wins: an app built
        again in one process, as tests do, replaces the source)."""
        with self._lock:
            self._count = count
            self._expires = float("-inf")

    def _counts(self) -> Mapping[str, int] | None:
        with self._lock:
            if self._count is not None and self._clock() >= self._expires:
                try:
                    self._cached = self._count()
                except Exception:
                    log.warning("counting live series for %s failed", self.NAME, exc_info=True)
                    self._cached = None
                self._expires = self._clock() + self._ttl
            return self._cached

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(self.NAME, self.HELP, labels=["status"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = self._counts()
        if counts is None:
            return
        family = GaugeMetricFamily(self.NAME, self.HELP, labels=["status"])
        for status in self.STATUSES:
            family.add_metric([status], counts.get(status, 0))
        yield family


SERIES_ACTIVE = SeriesActive()
REGISTRY.register(SERIES_ACTIVE)

# ---- events (outbox relay, audit consumer) ----------------------------------
EVENTS_PUBLISHED = Counter(
    "todo_events_published_total", "Events the outbox relay published to the broker.", ["topic"]
)
EVENTS_PUBLISH_FAILURES = Counter(
    "todo_events_publish_failures_total",
    "Outbox events whose publish failed (they stay pending and are retried).",
    ["topic"],
)
OUTBOX_PENDING = Gauge("todo_outbox_pending", "Outbox rows not yet published (set-aside rows excluded).")
OUTBOX_QUARANTINED = Counter(
    "todo_outbox_quarantined_total",
    "Outbox rows set aside as poison: refused by the broker again and again while it took other "
    "events (the reason is in the row's last_error).",
    ["topic"],
)
OUTBOX_PUBLISH_LAG = Histogram(
    "todo_outbox_publish_lag_seconds",
    "Time from an event's occurrence (its commit to the outbox) to its publication.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800),
)
AUDIT_EVENTS = Counter(
    "todo_audit_events_total",
    "Events the audit consumer handled, by event type; `invalid` is a malformed message and "
    "`unsupported_version` an unknown schema version (both dead-lettered).",
    ["type"],
)
AUDIT_DUPLICATES = Counter(
    "todo_audit_duplicates_total", "Redelivered events already in the audit log (ignored)."
)
DEAD_LETTERS = Counter(
    "todo_audit_dead_letters_total", "Messages that reached a dead-letter topic.", ["topic"]
)

# ---- reminders ----------------------------------------------------------------
REMINDERS_SENT = Counter("todo_reminders_sent_total", "Reminder emails the SMTP server accepted.")
REMINDERS_FAILED = _seeded(
    Counter(
        "todo_reminders_failed_total",
        "Reminder emails given up on: refused for good (permanent) or every attempt failed (exhausted).",
        ["reason"],
    ),
    "permanent",
    "exhausted",
)
REMINDER_LATENESS = Histogram(
    "todo_reminder_lateness_seconds",
    "Time from a reminder's scheduled time to the SMTP server accepting its email.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900),
)
