"""A series' workflow state and its progress as the database reports it, for the workflow tests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from todos.series.contract import SENTINEL_FREE_WAITS, SeriesState

DUE = "2026-12-01T14:00:00+00:00"  # 09:00 in New York


def state(**changes: Any) -> SeriesState:
    base = SeriesState(
        series_id="s1",
        user_id="alice",
        rule="FREQ=DAILY",
        timezone="America/New_York",
        basis="schedule",
        dtstart=DUE,
        anchor=DUE,
        occurrence_index=1,
        rule_index=1,
        current_task_id="t1",
        grace_seconds=300,
        reconcile_seconds=3600,
        wait_shape=SENTINEL_FREE_WAITS,
    )
    return replace(base, **changes)


def progress(**changes: Any) -> dict[str, Any]:
    base = {
        "status": "active",
        "rule": "FREQ=DAILY",
        "timezone": "America/New_York",
        "basis": "schedule",
        "dtstart": DUE,
        "anchor": DUE,
        "occurrence_index": 1,
        "rule_index": 1,
        "current_task_id": "t1",
        "current_task_status": "pending",
        "completed_at": None,
    }
    return {**base, **changes}
