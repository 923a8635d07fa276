"""The contract between the series workflow, its activities and the service
layer: names, the workflow's state, and what activities return.

The dataclasses implement the model protocol of the Dapr SDK (`model_dump` /
`model_validate`), so they travel as plain JSON objects that other SDKs and
the inspect API can read, and come back as the same type.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any, Self

WORKFLOW_NAME = "recurring_task_workflow"

# External events (snake_case, DESIGN §6). The database is the source of
# truth: every event only wakes the workflow to reconcile with it, so a lost
# event delays a step, it never loses one.
TASK_COMPLETED = "task_completed"
SERIES_CHANGED = "series_changed"
SERIES_PAUSED = "series_paused"
SERIES_RESUMED = "series_resumed"
OCCURRENCE_SKIPPED = "occurrence_skipped"
SERIES_STOPPED = "series_stopped"
TASK_REOPENED = "task_reopened"
EVENTS = (
    TASK_COMPLETED,
    SERIES_CHANGED,
    SERIES_PAUSED,
    SERIES_RESUMED,
    OCCURRENCE_SKIPPED,
    SERIES_STOPPED,
    TASK_REOPENED,
)
# What a generation of wait_shape 1 waited for: each SDK wait records a
# sentinel timer in the history, so its replay must wait for these six only.
SHAPE_1_EVENTS = EVENTS[:6]

# Activity names, registered explicitly.
LOAD_SERIES_PROGRESS = "load_series_progress"
CREATE_NEXT_OCCURRENCE = "create_next_occurrence"
FINISH_SERIES = "finish_series"
SCHEDULE_TASK_REMINDERS = "schedule_task_reminders"


def instance_id(series_id: uuid.UUID | str) -> str:
    return f"series-{series_id}"


def series_id_of(instance: str) -> uuid.UUID | None:
    """The series behind a workflow instance id, or None if it is not one of ours."""
    prefix = "series-"
    if not instance.startswith(prefix):
        return None
    try:
        return uuid.UUID(instance[len(prefix) :])
    except ValueError:
        return None


class JsonDataclass:
    """Model protocol for frozen dataclasses of JSON-native fields."""

    def model_dump(self, mode: str = "json") -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def model_validate(cls, value: Any) -> Self:
        if isinstance(value, cls):
            return value
        data = value if isinstance(value, dict) else vars(value)
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class SeriesSchedule(JsonDataclass):
    """Where a series stands in its rule: the part of a series that both the
    workflow's state and the database's view of it carry."""

    rule: str
    timezone: str
    basis: str
    # The series' occurrence #1 (for the rule) and the current occurrence.
    dtstart: str
    anchor: str
    occurrence_index: int
    rule_index: int
    # The recurrence set's EXDATEs and RDATEs (instants, in order). Keyword
    # only, so the subclasses keep their positional fields; empty in states
    # and results recorded before them, which is what those series had.
    exdates: list[str] = dataclasses.field(default_factory=list, kw_only=True)
    rdates: list[str] = dataclasses.field(default_factory=list, kw_only=True)

    def schedule(self) -> dict[str, Any]:
        """Just these fields, to carry them into another series dataclass."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(SeriesSchedule)}


@dataclass(frozen=True)
class SeriesState(SeriesSchedule):
    """Input of each generation of `recurring_task_workflow` (continue-as-new)."""

    series_id: str
    user_id: str
    current_task_id: str
    paused: bool = False
    # Copied from settings when the series starts, so that a replay always
    # sees the timer durations its history was written with.
    grace_seconds: int = 300
    reconcile_seconds: int = 3600
    # How a generation waits for its events (workflows/waiting.py). Carried in
    # the input, so every replay of a generation takes the path its history
    # was written with: 1 for generations begun before sentinel-free waits
    # (inputs without the field), 2 from the next generation on.
    wait_shape: int = 1
    # The current occurrence's due time when it was moved off its slot in the
    # rule (`anchor`); None when it is on it.
    current_due: str | None = None
    # Why the last generation could not compute the next occurrence; shown
    # in the custom status until a generation succeeds.
    last_error: str | None = None
    # How a generation steps once the current occurrence's completion woke it
    # (Settings.series_step_shape): 1 reads the progress first, then creates;
    # SPECULATIVE_STEPS creates at once from what the state and the event say,
    # and reads only when the activity finds the database says otherwise.
    # Carried in the input, as wait_shape: a replay takes its history's path.
    step_shape: int = 1


# SeriesState.wait_shape of generations that wait without sentinel timers.
SENTINEL_FREE_WAITS = 2
# SeriesState.step_shape of generations that create without reading first.
SPECULATIVE_STEPS = 2


@dataclass(frozen=True)
class SeriesProgress(SeriesSchedule):
    """What the database says about a series and its current occurrence."""

    status: str  # SeriesStatus value, or "missing"
    current_task_id: str | None
    # pending | completed | skipped | missing (deleted)
    current_task_status: str
    completed_at: str | None
    # The current task's due time, when it is not the rule's slot (`anchor`):
    # its due date was edited. None in results recorded before the field.
    current_due: str | None = None
    # The step shape this deploy is set to (Settings.series_step_shape), for
    # the next generation. None in results recorded before the field.
    step_shape: int | None = None


@dataclass(frozen=True)
class NextOccurrence(JsonDataclass):
    """Input of `create_next_occurrence`: task number `occurrence_index` of the
    series, the rule's occurrence `rule_index`, is due at `due_at`."""

    series_id: str
    occurrence_index: int
    rule_index: int
    due_at: str
    # The rule the step was computed from (SeriesSchedule's fields), so the
    # activity can refuse a step whose rule changed meanwhile. None in inputs
    # written before the fields existed: those are not checked.
    rule: str | None = None
    timezone: str | None = None
    basis: str | None = None
    dtstart: str | None = None
    # And its exceptions: a date skipped or moved meanwhile refuses the step
    # too. None in inputs written before the fields: not checked.
    exdates: list[str] | None = None
    rdates: list[str] | None = None
    # A speculative step's (SPECULATIVE_STEPS): the SeriesProgress it was
    # computed from without reading it. The activity refuses (STALE) when the
    # database says otherwise; None: the step was computed from a read.
    assumed: dict[str, Any] | None = None


# CreatedOccurrence.refused: why nothing was created.
SERIES_ENDED = "series-ended"
RULE_CHANGED = "rule-changed"
STALE = "stale"
REOPENED = "reopened"


@dataclass(frozen=True)
class CreatedOccurrence(JsonDataclass):
    task_id: str
    occurrence_index: int
    due_at: str
    # Reminder jobs of the task still to arm. None in results recorded
    # before the field existed: their replays must arm, as they did.
    reminders_to_arm: int | None = None
    # SERIES_ENDED (stopped while the step was computed), RULE_CHANGED
    # (the step was computed from a rule since replaced), STALE (a
    # speculative step's assumed progress is not the database's) or REOPENED
    # (the current occurrence is pending again): nothing was created, and
    # task_id is empty.
    refused: str | None = None


@dataclass(frozen=True)
class FinishedSeries(JsonDataclass):
    series_id: str
    reason: str  # "exhausted" (COUNT/UNTIL) or "stopped"


@dataclass(frozen=True)
class TaskReminders(JsonDataclass):
    """Input of `schedule_task_reminders`: arm the jobs of this task's reminders."""

    task_id: str


@dataclass(frozen=True)
class ArmedReminders(JsonDataclass):
    task_id: str
    armed: int
