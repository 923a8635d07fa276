"""Prometheus metrics of the domain (the HTTP ones live in api.metrics).
Names: todo_ prefix, base units, _total counters, bounded labels only."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

TASKS_CREATED = Counter("todo_tasks_created_total", "Tasks created through the API.", ["kind"])
TASKS_COMPLETED = Counter("todo_tasks_completed_total", "Tasks completed (first completion only).")
OCCURRENCES_CREATED = Counter(
    "todo_occurrences_created_total", "Next occurrences of recurring series created by workflows."
)
SWEEPER_REPAIRS = Counter(
    "todo_sweeper_repairs_total",
    "Workflow calls the sweeper repeated after a failure or crash left them undone.",
    ["action"],
)
SERIES_ACTIVE = Gauge("todo_series_active", "Recurring series that are active or paused.")
