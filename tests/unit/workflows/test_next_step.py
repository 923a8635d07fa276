"""`next_step` and `after_create`: what a generation does given where the
database says the series stands, and where it stands once the activity
answered. Pure functions: no context, no SDK."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.unit.workflows.states import DUE, progress, state
from todos.series.contract import RULE_CHANGED, SERIES_ENDED, STALE, CreatedOccurrence, SeriesProgress
from workflows.recurring import Create, Ended, Hold, after_create, next_step

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def at(**changes: object) -> SeriesProgress:
    return SeriesProgress.model_validate(progress(**changes))


@pytest.mark.parametrize(
    ("status", "how"), [("stopped", "stopped"), ("missing", "stopped"), ("finished", "exhausted")]
)
def test_an_ended_series_ends_the_workflow_without_finishing_it_again(status: str, how: str) -> None:
    step = next_step(state(), at(status=status), NOW)
    assert isinstance(step, Ended) and (step.how, step.finish) == (how, False)


@pytest.mark.parametrize("changes", [{"status": "paused", "current_task_status": "completed"}, {}])
def test_a_paused_series_or_a_pending_occurrence_holds(changes: dict[str, object]) -> None:
    step = next_step(state(last_error="earlier"), at(**changes), NOW)
    assert isinstance(step, Hold) and step.error is None and step.state.last_error is None
    assert step.state.paused == (changes.get("status") == "paused")


def test_a_completed_occurrence_creates_the_next_one_from_the_rule_read() -> None:
    step = next_step(state(), at(current_task_status="completed", rule="FREQ=WEEKLY"), NOW)
    assert isinstance(step, Create)
    occurrence = step.occurrence
    assert (occurrence.occurrence_index, occurrence.rule_index, occurrence.rule) == (2, 2, "FREQ=WEEKLY")
    assert occurrence.due_at == "2026-12-08T14:00:00+00:00" and occurrence.assumed is None


def test_a_date_skipped_ahead_of_time_is_passed_over_and_a_moved_one_is_created_at_its_new_time() -> None:
    # Daily at 14:00Z from Dec 1: Dec 2 skipped ahead of time, Dec 3 moved to 18:00Z.
    exceptions = {
        "exdates": ["2026-12-02T14:00:00+00:00", "2026-12-03T14:00:00+00:00"],
        "rdates": ["2026-12-03T18:00:00+00:00"],
    }
    step = next_step(state(), at(current_task_status="completed", **exceptions), NOW)

    assert isinstance(step, Create)
    occurrence = step.occurrence
    assert (occurrence.due_at, occurrence.occurrence_index, occurrence.rule_index) == (
        "2026-12-03T18:00:00+00:00",
        2,
        3,
    )
    # The activity refuses the step if the exceptions changed since (RULE_CHANGED).
    assert (occurrence.exdates, occurrence.rdates) == (exceptions["exdates"], exceptions["rdates"])


def test_a_used_up_rule_ends_by_finishing_the_series() -> None:
    step = next_step(state(), at(current_task_status="completed", rule="FREQ=DAILY;COUNT=1"), NOW)
    assert isinstance(step, Ended) and (step.how, step.finish) == ("exhausted", True)


def test_an_engine_error_holds_with_the_error_shown() -> None:
    step = next_step(state(), at(current_task_status="completed", rule="FREQ=DAILY;BYHOUR=99"), NOW)
    assert isinstance(step, Hold) and step.error is not None
    assert step.state.last_error is not None and step.state.last_error.startswith(type(step.error).__name__)


def created(**changes: object) -> CreatedOccurrence:
    return CreatedOccurrence.model_validate(
        {"task_id": "t2", "occurrence_index": 2, "due_at": DUE, **changes}
    )


def test_after_create_moves_on_ends_or_stays_where_it_was() -> None:
    step = next_step(state(current_due="2026-12-01T15:00:00+00:00"), at(current_task_status="completed"), NOW)
    assert isinstance(step, Create)
    moved_on = after_create(step, created(due_at="2026-12-02T14:00:00+00:00"))
    assert isinstance(moved_on, Hold)
    assert (moved_on.state.current_task_id, moved_on.state.occurrence_index) == ("t2", 2)
    assert (moved_on.state.anchor, moved_on.state.current_due) == ("2026-12-02T14:00:00+00:00", None)
    stopped = after_create(step, created(task_id="", refused=SERIES_ENDED))
    assert isinstance(stopped, Ended) and stopped.how == "stopped"
    for refused in (RULE_CHANGED, STALE):
        kept = after_create(step, created(task_id="", refused=refused))
        assert isinstance(kept, Hold) and kept.state == step.state
