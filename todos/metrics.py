"""Prometheus metrics of the domain (the HTTP ones live in api.metrics).
Names: todo_ prefix, base units, _total counters, bounded labels only."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TASKS_CREATED = Counter("todo_tasks_created_total", "Tasks created through the API.", ["kind"])
TASKS_COMPLETED = Counter("todo_tasks_completed_total", "Tasks completed (first completion only).")
OCCURRENCES_CREATED = Counter(
    "todo_occurrences_created_total", "Next occurrences of recurring series created by workflows."
)
SWEEPER_REPAIRS = Counter(
    "todo_sweeper_repairs_total",
    "Workflow and Dapr job calls the sweeper repeated after a failure or crash left them undone.",
    ["action"],
)
SERIES_ACTIVE = Gauge("todo_series_active", "Recurring series that are active or paused.")

# ---- events (outbox relay, audit consumer) ----------------------------------
EVENTS_PUBLISHED = Counter(
    "todo_events_published_total", "Events the outbox relay published to the broker.", ["topic"]
)
EVENTS_PUBLISH_FAILURES = Counter(
    "todo_events_publish_failures_total",
    "Outbox events whose publish failed (they stay pending and are retried).",
    ["topic"],
)
OUTBOX_PENDING = Gauge("todo_outbox_pending", "Outbox rows not yet published.")
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
REMINDERS_FAILED = Counter(
    "todo_reminders_failed_total",
    "Reminder emails given up on: refused for good (permanent) or every attempt failed (exhausted).",
    ["reason"],
)
# Both series exist from the start, so a dashboard shows 0 rather than no data.
for _reason in ("permanent", "exhausted"):
    REMINDERS_FAILED.labels(_reason)
REMINDER_LATENESS = Histogram(
    "todo_reminder_lateness_seconds",
    "Time from a reminder's scheduled time to the SMTP server accepting its email.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900),
)
