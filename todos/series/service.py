"""What a user does with a series and sees of it: its view, its workflow
(owner only), pause / resume / skip / stop, its dates, reopening an
occurrence, and the rule preview."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func
from sqlmodel import Session, col, select

from todos.core.errors import Conflict, InvalidInput, NotFound, Unavailable
from todos.core.fields import rfc3339
from todos.core.users import User, owned
from todos.dapr import ENDED_STATUSES, WorkflowGateway, WorkflowInfo
from todos.effects import Service, Transaction
from todos.events import schema as events
from todos.reminders.ledger import ReminderLedger
from todos.series import recurrence
from todos.series.changes import recurrence_error, recurrence_of
from todos.series.coming import OccurrencesPublic, coming, occurrences_public
from todos.series.contract import (
    OCCURRENCE_SKIPPED,
    SERIES_CHANGED,
    SERIES_PAUSED,
    SERIES_RESUMED,
    SERIES_STOPPED,
    TASK_REOPENED,
    instance_id,
    series_id_of,
)
from todos.series.models import LIVE_STATUSES, Series, SeriesStatus
from todos.series.reopening import step_back, why_not_withdrawn
from todos.series.steering import add_date, check_coming, current_due, leave_out, to_instant
from todos.series.views import (
    SeriesPublic,
    WorkflowPublic,
    WorkflowStatusPublic,
    json_object,
    workflow_public,
)
from todos.tasks.models import Task, TaskPublic, TaskStatus
from todos.tasks.views import snapshot, task_public

log = logging.getLogger(__name__)

Control = Literal["pause", "resume", "skip", "stop"]
DeleteScope = Literal["occurrence", "series"]


@dataclass(frozen=True)
class Preview:
    occurrences: list[str]
    text: str


@dataclass(frozen=True)
class SeriesService(Service):
    ledger: ReminderLedger
    workflows: WorkflowGateway

    # ---- what a user sees ----------------------------------------------------

    def get_series(self, user: User, series_id: uuid.UUID) -> SeriesPublic:
        series, current = self._load(user, series_id)
        workflow = self._describe(instance_id(series.id))
        if (
            workflow is not None
            and workflow.runtime_status in ENDED_STATUSES
            and series.status in LIVE_STATUSES
        ):
            # The workflow ended between the two reads. Its last activity committed the
            # series' end before that (finish_series; a stop commits before it signals),
            # so a second read agrees with the engine.
            series, current = self._load(user, series_id)
        try:
            text = recurrence.describe(recurrence_of(series))
        except recurrence.RecurrenceError:
            text = series.rule
        return SeriesPublic(
            id=series.id,
            user_id=series.user_id,
            rule=series.rule,
            timezone=series.timezone,
            basis=series.basis,
            text=text,
            status=series.status,
            current_task=current,
            next_due_at=_next_due(series, current),
            occurrence_index=series.occurrence_index,
            occurrences_created=series.occurrences_created,
            exdates=[rfc3339(moment) or "" for moment in series.exdates],
            rdates=[rfc3339(moment) or "" for moment in series.rdates],
            created_at=rfc3339(series.created_at) or "",
            updated_at=rfc3339(series.updated_at) or "",
            ended_at=rfc3339(series.ended_at),
            workflow=WorkflowStatusPublic(
                instance_id=instance_id(series.id),
                runtime_status=workflow.runtime_status if workflow else None,
                custom_status=json_object(workflow.serialized_custom_status) if workflow else None,
            ),
        )

    def _load(self, user: User, series_id: uuid.UUID) -> tuple[Series, TaskPublic | None]:
        """The user's series and its current task."""
        with self.uow.database.session() as session:
            series = owned(session, Series, user, series_id)
            current = session.get(Task, series.current_task_id) if series.current_task_id else None
            return series, task_public(session, current, series) if current is not None else None

    def _describe(self, instance: str) -> WorkflowInfo | None:
        try:
            return self.workflows.describe(instance)
        except Exception:
            log.warning("workflow state of %s unavailable", instance, exc_info=True)
            return None

    def describe_workflow(self, user: User, instance: str) -> WorkflowPublic:
        """A series' workflow, for the series' owner only: another user's
        instance, an unknown one and one that is not a series are all 404."""
        series_id = series_id_of(instance)
        missing = NotFound(
            f"No workflow {instance!r} exists for this user; series workflows are named "
            "series-<series id> (see `workflow.instance_id` of GET /v1/series/{id}).",
            field="instance_id",
        )
        if series_id is None:
            raise missing
        with self.uow.database.session() as session:
            try:
                series = owned(session, Series, user, series_id)
            except NotFound:
                raise missing from None
            started = series.workflow_started_at is not None
        canonical = instance_id(series_id)
        try:
            info = self.workflows.describe(canonical)
        except Exception as error:
            log.warning("workflow state of %s unavailable", canonical, exc_info=True)
            raise Unavailable(
                "The workflow engine (the Dapr sidecar) did not answer; retry shortly."
            ) from error
        if info is None:
            # Dapr keeps no record of purged instances; the database knows it ran.
            status = "PURGED" if started else "NOT_STARTED"
            return WorkflowPublic(instance_id=canonical, series_id=series_id, runtime_status=status)
        return workflow_public(info, series_id)

    def counts(self) -> dict[str, int]:
        """Live series by status, for todo_series_active."""
        with self.uow.database.session() as session:
            rows = session.execute(
                select(Series.status, func.count())
                .where(col(Series.status).in_(LIVE_STATUSES))
                .group_by(col(Series.status))
            ).all()
        return {str(status): count for status, count in rows}

    # ---- what a user does ----------------------------------------------------

    def control_series(
        self, user: User, series_id: uuid.UUID, action: Control, *, occurrence: uuid.UUID | None = None
    ) -> SeriesPublic:
        """`occurrence`: for a skip, the task the caller means to skip; refused
        unless it is still the current one (a retried call must not skip the
        occurrence created since)."""
        now = self.clock()
        with self.uow.transaction() as tx:
            series = owned(tx.session, Series, user, series_id, lock=True)
            if series.status not in LIVE_STATUSES:
                raise Conflict(
                    f"The series has ended ({series.status}); only an active or paused series can {action}.",
                    field="series_id",
                )
            if action == "pause":
                series.status = SeriesStatus.paused
                event = SERIES_PAUSED
            elif action == "resume":
                series.status = SeriesStatus.active
                event = SERIES_RESUMED
            elif action == "stop":
                self.stop(tx, series, now)
                event = SERIES_STOPPED
            else:
                self._skip_current(tx, series, now, occurrence)
                event = OCCURRENCE_SKIPPED
            series.updated_at = now
            tx.effects.notify(series.id, event)
        return self.get_series(user, series_id)

    def skip_occurrence(self, user: User, task_id: uuid.UUID, due_at: datetime | None = None) -> SeriesPublic:
        """Skip the occurrence `task_id` (it must be its series' current one),
        or with `due_at` a date ahead in its series."""
        with self.uow.database.session() as session:
            task = owned(session, Task, user, task_id)
            if task.series_id is None:
                raise InvalidInput(
                    "task_id: this task does not recur; complete or delete it instead.", field="task_id"
                )
            series_id = task.series_id
        if due_at is not None:
            return self.skip_date(user, series_id, due_at)
        return self.control_series(user, series_id, "skip", occurrence=task_id)

    def _skip_current(
        self, tx: Transaction, series: Series, now: datetime, occurrence: uuid.UUID | None
    ) -> None:
        if occurrence is not None and occurrence != series.current_task_id:
            raise Conflict(
                f"task_id: task {occurrence} is not the current occurrence of its series, so it cannot "
                f"be skipped; the current one is task {series.current_task_id} "
                f"(occurrence #{series.occurrence_index}, due {rfc3339(series.anchor_at)}); "
                "skip that one if you mean it.",
                field="task_id",
            )
        session = tx.session
        current = (
            session.get(Task, series.current_task_id, with_for_update=True)
            if series.current_task_id
            else None
        )
        if current is None or current.status != TaskStatus.pending:
            raise Conflict("The current occurrence is no longer pending; nothing to skip.", field="series_id")
        before = snapshot(session, current, series)
        current.status = TaskStatus.skipped
        current.updated_at = now
        self.emitter.change(session, events.TASK_UPDATED, current, before, snapshot(session, current, series))
        tx.effects.jobs += self.ledger.cancel(session, [current.id], now)

    def list_occurrences(self, user: User, series_id: uuid.UUID, limit: int) -> OccurrencesPublic:
        """The current occurrence and the next ones, `limit` in all; none once the series ended."""
        with self.uow.database.session() as session:
            series = owned(session, Series, user, series_id)
            current = session.get(Task, series.current_task_id) if series.current_task_id else None
        if series.status not in LIVE_STATUSES or current is None:
            return OccurrencesPublic(series_id=str(series.id), occurrences=[], skipped=[])
        plan = coming(series, current_due(series, current), self.clock(), limit - 1)
        return occurrences_public(series, plan)

    def skip_date(self, user: User, series_id: uuid.UUID, due_at: datetime) -> SeriesPublic:
        """Skip the occurrence due at `due_at`: the current one (as a skip
        does), or one ahead (an EXDATE). Skipping a date left out already
        changes nothing."""
        now = self.clock()
        with self.uow.transaction() as tx:
            series, current = self._steerable(tx, user, series_id)
            if due_at == current_due(series, current):
                self._skip_current(tx, series, now, current.id)
                series.updated_at = now
                tx.effects.notify(series.id, OCCURRENCE_SKIPPED)
            elif due_at not in series.exdates:
                check_coming(series, current, due_at, now, "due_at")
                before = snapshot(tx.session, current, series)
                leave_out(series, due_at)
                self._steered(tx, series, current, before, now)
        return self.get_series(user, series_id)

    def move_date(self, user: User, series_id: uuid.UUID, due_at: datetime, to: datetime) -> SeriesPublic:
        """Move the occurrence due at `due_at` to `to` (wall time in the
        series' zone without an offset): the current one (its due time, as
        an edit does), or one ahead (an EXDATE and an RDATE)."""
        now = self.clock()
        with self.uow.transaction() as tx:
            series, current = self._steerable(tx, user, series_id)
            before = snapshot(tx.session, current, series)
            if due_at == current_due(series, current):
                current.due_at = to_instant(to, series.timezone)
                current.updated_at = now
                tx.session.flush()
                sync = self.ledger.sync(tx.session, current, now)
                tx.effects.jobs += sync.jobs
                self._steered(tx, series, current, before, now)
                self.ledger.emit_armed(tx.session, current, sync)
            else:
                planned = check_coming(series, current, due_at, now, "due_at")
                leave_out(series, due_at)
                add_date(series, current, to, now, planned)
                self._steered(tx, series, current, before, now)
        return self.get_series(user, series_id)

    def _steerable(self, tx: Transaction, user: User, series_id: uuid.UUID) -> tuple[Series, Task]:
        """The user's live series, locked, and its current occurrence."""
        series = owned(tx.session, Series, user, series_id, lock=True)
        current = (
            tx.session.get(Task, series.current_task_id, with_for_update=True)
            if series.current_task_id
            else None
        )
        if series.status not in LIVE_STATUSES or current is None:
            raise Conflict(
                f"The series has ended ({series.status}); only the dates of an active or paused series "
                "can be skipped or moved.",
                field="series_id",
            )
        return series, current

    def _steered(
        self, tx: Transaction, series: Series, current: Task, before: dict[str, Any], now: datetime
    ) -> None:
        """Record a change of the series' dates on its current occurrence (its
        `recurrence` or `due_at` shows it) and wake the workflow to read it."""
        series.updated_at = now
        tx.session.flush()
        after = snapshot(tx.session, current, series)
        self.emitter.change(tx.session, events.TASK_UPDATED, current, before, after)
        tx.effects.notify(series.id, SERIES_CHANGED)

    def reopen(self, tx: Transaction, series: Series, task: Task, now: datetime) -> None:
        """Let `task`, completed or skipped, be the series' current occurrence
        again: the latest one (the workflow has not stepped yet), or the one
        before it while the occurrence created since is untouched, which is
        withdrawn. Then the workflow reads the series again."""
        if series.status not in LIVE_STATUSES:
            raise Conflict(
                f"task_id: its series has ended ({series.status}); only an occurrence of an active or "
                "paused series can be reopened.",
                field="task_id",
            )
        if task.id != series.current_task_id:
            session = tx.session
            following = (
                session.get(Task, series.current_task_id, with_for_update=True)
                if series.current_task_id
                else None
            )
            reminded = following is not None and self.ledger.has_gone_out(session, following.id)
            why = why_not_withdrawn(series, task, following, reminded)
            if why is not None or following is None:
                raise Conflict(why or "", field="task_id")
            tx.effects.jobs += self.ledger.cancel(session, [following.id], now)
            self.emit_deleted(session, following, series, "occurrence", withdrawn_for=task.id)
            session.delete(following)
            step_back(series, task, now)
        series.updated_at = now
        data = {"task_id": str(task.id), "occurrence_index": task.occurrence_index}
        tx.effects.notify(series.id, TASK_REOPENED, data)

    def stop(self, tx: Transaction, series: Series, now: datetime) -> set[uuid.UUID]:
        """Stopping ends the series: its pending occurrence goes away with it
        (and its reminders); completed occurrences stay as history. Returns
        the deleted task ids."""
        series.status = SeriesStatus.stopped
        series.ended_at = now
        series.updated_at = now
        session = tx.session
        pending = list(
            session.exec(select(Task).where(Task.series_id == series.id, Task.status == TaskStatus.pending))
        )
        tx.effects.jobs += self.ledger.cancel(session, [task.id for task in pending], now)
        for task in pending:
            self.emit_deleted(session, task, series, "series")
            session.delete(task)
        return {task.id for task in pending}

    def emit_deleted(
        self,
        session: Session,
        task: Task,
        series: Series | None,
        scope: DeleteScope,
        *,
        withdrawn_for: uuid.UUID | None = None,
    ) -> None:
        """`withdrawn_for`: the occurrence was withdrawn for the reopened task with this id."""
        payload: dict[str, Any] = {"task": snapshot(session, task, series), "scope": scope}
        if withdrawn_for is not None:
            payload["withdrawn_for"] = str(withdrawn_for)
        self.emitter.task(session, events.TASK_DELETED, task, payload)

    def preview(self, rule: str, dtstart: datetime, timezone: str, limit: int) -> Preview:
        """Needs no token, so its work is bounded: one budget for checking the rule and listing its
        occurrences (RULE_TOO_SPARSE past it), and the route limits how often each client may ask."""
        try:
            rec, found = recurrence.preview(
                rule,
                timezone=timezone,
                dtstart=dtstart,
                limit=limit,
                min_interval=self.settings.min_recurrence_interval,
                budget=recurrence.Budget(),
            )
        except recurrence.RecurrenceError as error:
            raise recurrence_error(error, "") from error
        return Preview(occurrences=[rfc3339(o) or "" for o in found], text=recurrence.describe(rec))


def _next_due(series: Series, current: TaskPublic | None) -> str | None:
    """A live series' current due time: its current task's, which may have been
    moved off the rule's slot (the anchor)."""
    if series.status not in LIVE_STATUSES:
        return None
    due = current.due_at if current is not None and current.due_at is not None else series.anchor_at
    return rfc3339(due)
