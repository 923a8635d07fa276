"""The series workflow's side effects, each one an activity's: read where a
series stands, create its next occurrence (once, by its unique key), mark it
finished, arm the new occurrence's reminder jobs."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, col, select

from todos.core.errors import NotFound
from todos.core.metrics import COMPLETION_TO_NEXT, OCCURRENCES_CREATED, SPECULATIVE_STEPS
from todos.effects import Service
from todos.events import schema as events
from todos.reminders.jobs import ScheduleJob
from todos.reminders.ledger import ReminderLedger
from todos.series.contract import (
    REOPENED,
    RULE_CHANGED,
    SERIES_ENDED,
    STALE,
    CreatedOccurrence,
    FinishedSeries,
    NextOccurrence,
    SeriesProgress,
)
from todos.series.models import LIVE_STATUSES, Series, SeriesStatus
from todos.series.starts import iso, schedule_of
from todos.tasks.models import Task, TaskStatus
from todos.tasks.views import task_json, task_public

log = logging.getLogger(__name__)

# A series deleted: the workflow ends (its schedule, in SeriesSchedule's order, is a blank).
_MISSING = SeriesProgress(
    "", "UTC", "schedule", "", "", 0, 1, status="missing", current_task_id=None,
    current_task_status="missing", completed_at=None,
)  # fmt: skip


@dataclass(frozen=True)
class SeriesSteps(Service):
    ledger: ReminderLedger

    def load_series_progress(self, series_id: str) -> SeriesProgress:
        """Where the series and its current occurrence stand (read only)."""
        with self.database.session() as session:
            # The series and its current task in one round trip.
            found = session.exec(
                select(Series, Task)
                .outerjoin(Task, col(Task.id) == col(Series.current_task_id))
                .where(Series.id == uuid.UUID(series_id))
            ).first()
            if found is None:
                return _MISSING
            return dataclasses.replace(_progress(*found), step_shape=self.settings.series_step_shape)

    def create_next_occurrence(self, step: NextOccurrence) -> CreatedOccurrence:
        """Create occurrence `step.occurrence_index` and make it current.

        Idempotent: the unique key (series_id, occurrence_index) makes a retry
        or replay find the row created the first time instead of a second one.
        """
        series_id = uuid.UUID(step.series_id)
        now = self.clock()
        with self.database.session() as session:
            # The series, locked, with its current occurrence.
            found = session.exec(
                select(Series, Task)
                .outerjoin(Task, col(Task.id) == col(Series.current_task_id))
                .where(Series.id == series_id)
                .with_for_update(of=Series)
            ).first()
            if found is None:
                raise NotFound(f"Series {series_id} no longer exists.", field="series_id")
            series, current = found
            current_index = current.occurrence_index if current is not None else None
            current_completed_at = current.completed_at if current is not None else None
            # A retry of a step that committed finds its row below, whatever changed since.
            refused = (
                _refusal(series, current, step) if series.occurrence_index < step.occurrence_index else None
            )
            if refused is not None:
                if step.assumed is not None:
                    SPECULATIVE_STEPS.labels("stale" if refused == STALE else "refused").inc()
                log.info(
                    "series %s: occurrence %d not created (%s)", series_id, step.occurrence_index, refused
                )
                return CreatedOccurrence(
                    task_id="", occurrence_index=step.occurrence_index, due_at=step.due_at, refused=refused
                )
            task, inserted = self._insert_occurrence(session, series, step, now)
            created = CreatedOccurrence(
                task_id=str(task.id),
                occurrence_index=step.occurrence_index,
                due_at=step.due_at,
                reminders_to_arm=self._reminder_rows(session, task, new=inserted, now=now),
            )
            if series.occurrence_index < step.occurrence_index:
                series.occurrences_created += 1
                series.previous_anchor_at = series.anchor_at
                series.previous_rule_index = series.rule_index
                series.occurrence_index = step.occurrence_index
                series.rule_index = step.rule_index
                series.anchor_at = _instant(step.due_at)
                series.current_task_id = task.id
                series.updated_at = now
        if inserted:
            OCCURRENCES_CREATED.inc()
            if step.assumed is not None:
                SPECULATIVE_STEPS.labels("created").inc()
            if current_completed_at is not None and current_index == step.occurrence_index - 1:
                # After the commit: the time a user waits to see the next occurrence.
                COMPLETION_TO_NEXT.observe((self.clock() - current_completed_at).total_seconds())
        return created

    def _insert_occurrence(
        self, session: Session, series: Series, step: NextOccurrence, now: datetime
    ) -> tuple[Task, bool]:
        """The occurrence's task, and whether this run inserted it (a retry or
        replay finds the row its first run created)."""
        template = series.template
        inserted = session.scalars(
            insert(Task)
            .values(
                id=uuid.uuid4(),
                user_id=series.user_id,
                title=template["title"],
                description=template.get("description"),
                priority=template.get("priority", "medium"),
                tags=template.get("tags", []),
                status=TaskStatus.pending.value,
                due_at=_instant(step.due_at),
                reminders=template.get("reminders", []),
                checklist=template.get("checklist", []),
                notify_email=template.get("notify_email"),
                notify_timezone=template.get("notify_timezone"),
                series_id=series.id,
                occurrence_index=step.occurrence_index,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(constraint="uq_tasks_series_occurrence")
            .returning(Task)
        ).first()
        if inserted is None:
            found = session.exec(
                select(Task).where(
                    Task.series_id == series.id, Task.occurrence_index == step.occurrence_index
                )
            ).one()
            return found, False
        # Only the first run of the activity creates the task, so only it emits.
        # Its reminder rows come next: none exist yet.
        created = task_json(task_public(session, inserted, series, rows=[]))
        self.emitter.task(session, events.TASK_CREATED, inserted, {"task": created})
        return inserted, True

    def _reminder_rows(self, session: Session, task: Task, *, new: bool, now: datetime) -> int:
        """Write the occurrence's reminder rows; returns how many jobs are still
        to arm. Rows only: arming is the next activity's side effect
        (schedule_task_reminders), so a retry here arms nothing twice."""
        jobs = []
        if task.status == TaskStatus.pending:
            sync = self.ledger.sync(session, task, now, new=new)
            self.ledger.emit_armed(session, task, sync)
            jobs = sync.jobs
        if new:
            return sum(isinstance(job, ScheduleJob) for job in jobs)
        # A retry finds the first run's rows, which may still wait to be armed.
        return len(self.ledger.unarmed(session, task.id))

    def finish_series(self, finished: FinishedSeries) -> None:
        """COUNT or UNTIL is used up: the series ends on its own (a stop wins)."""
        now = self.clock()
        with self.database.session() as session:
            session.execute(
                update(Series)
                .where(
                    col(Series.id) == uuid.UUID(finished.series_id),
                    col(Series.status) != SeriesStatus.stopped,
                )
                .values(status=SeriesStatus.finished, ended_at=now, updated_at=now)
            )

    def schedule_task_reminders(self, task_id: uuid.UUID) -> int:
        """Arm the jobs of a new occurrence's reminders (overwrite: a retry arms nothing twice)."""
        return self.ledger.schedule_task_reminders(task_id)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _instants(texts: list[str]) -> list[datetime]:
    return [_instant(text) for text in texts]


def _progress(series: Series, current: Task | None) -> SeriesProgress:
    """Where a series and its current occurrence stand, as their rows say."""
    return SeriesProgress(
        **schedule_of(series).schedule(),
        status=str(series.status),
        current_task_id=str(series.current_task_id) if series.current_task_id else None,
        current_task_status=str(current.status) if current is not None else "missing",
        completed_at=iso(current.completed_at) if current is not None and current.completed_at else None,
        current_due=iso(current.due_at)
        if current is not None and current.due_at is not None and current.due_at != series.anchor_at
        else None,
    )


def _refusal(series: Series, current: Task | None, step: NextOccurrence) -> str | None:
    """Why `step` must not create its occurrence: the series was stopped, its
    rule changed or its occurrence reopened after the workflow read it, or it was computed from a
    progress the database does not hold (all of these commit under the
    series' lock, which the step now holds, so this is the last word)."""
    if series.status not in LIVE_STATUSES:
        return SERIES_ENDED
    # A step follows a completed, skipped or deleted occurrence only; a retry of
    # a step from before a reopen must not create the occurrence it withdrew.
    if current is not None and current.status == TaskStatus.pending:
        return REOPENED
    if step.rule is not None and (step.rule, step.timezone, step.basis, step.dtstart) != (
        series.rule,
        series.timezone,
        str(series.basis),
        iso(series.dtstart),
    ):
        return RULE_CHANGED
    if step.exdates is not None and (_instants(step.exdates), _instants(step.rdates or [])) != (
        series.exdates,
        series.rdates,
    ):
        return RULE_CHANGED
    if step.assumed is not None and not _same(
        SeriesProgress.model_validate(step.assumed), _progress(series, current)
    ):
        return STALE
    return None


# SeriesProgress's times: the workflow may hold them at another offset than the database gives.
_INSTANTS = ("dtstart", "anchor", "completed_at", "current_due")


def _same(assumed: SeriesProgress, actual: SeriesProgress) -> bool:
    """The same progress as the workflow reads it: times compared as instants,
    and the step shape left out (it is the deploy's, not the series')."""

    def key(progress: SeriesProgress) -> dict[str, object]:
        fields = dataclasses.asdict(progress) | {"step_shape": None}
        exceptions = {"exdates": _instants(progress.exdates), "rdates": _instants(progress.rdates)}
        return (
            fields
            | exceptions
            | {name: _instant(fields[name]) if fields[name] else None for name in _INSTANTS}
        )

    return key(assumed) == key(actual)
