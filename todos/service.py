"""The one place for task and series rules. REST routes, MCP tools, the Dapr
job callback, subscriptions and workflow activities all call this module.

Each operation is one database transaction; calls to the workflow engine
happen after the commit and are only wake-ups (the workflow reconciles with
the database), so a failed call delays a step and never loses one: the
sweeper (`sweep`) retries starts and completions that did not get through.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import and_, or_, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, col, select

from todos import events, recurrence
from todos.dapr_gateway import WorkflowGateway, WorkflowInfo
from todos.db import session_scope
from todos.errors import Conflict, InvalidInput, NotFound, Unavailable
from todos.models import (
    Basis,
    RecurrenceSpec,
    ReminderSpec,
    Series,
    SeriesPublic,
    SeriesStatus,
    Task,
    TaskCreate,
    TaskPage,
    TaskPublic,
    TaskStatus,
    TaskUpdate,
    WorkflowPublic,
    WorkflowStatusPublic,
    rfc3339,
    utcnow,
)
from todos.orchestration import (
    OCCURRENCE_SKIPPED,
    SERIES_CHANGED,
    SERIES_PAUSED,
    SERIES_RESUMED,
    SERIES_STOPPED,
    TASK_COMPLETED,
    CreatedOccurrence,
    FinishedSeries,
    NextOccurrence,
    SeriesProgress,
    SeriesState,
    instance_id,
    series_id_of,
)
from todos.outbox import record_event
from todos.settings import Settings

log = logging.getLogger(__name__)

StatusFilter = Literal["pending", "completed", "all"]
DeleteScope = Literal["occurrence", "series"]


@dataclass(frozen=True)
class User:
    id: str
    email: str | None = None


@dataclass(frozen=True)
class TaskQuery:
    status: StatusFilter = "all"
    due_before: datetime | None = None
    due_after: datetime | None = None
    series_id: uuid.UUID | None = None
    tag: str | None = None
    cursor: str | None = None
    limit: int = 50


@dataclass(frozen=True)
class Preview:
    occurrences: list[str]
    text: str


# ---- helpers ----------------------------------------------------------------


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def _recurrence_error(error: recurrence.RecurrenceError, prefix: str) -> InvalidInput:
    """Name the field as the client sent it: a task's dtstart is its due_at."""
    field = "due_at" if prefix and error.field == "dtstart" else f"{prefix}{error.field}"
    return InvalidInput(str(error), field=field, code=error.code)


def _encode_cursor(task: Task) -> str:
    raw = json.dumps([_iso(task.created_at), str(task.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, task_id = json.loads(base64.urlsafe_b64decode(padded))
        return _parse_iso(created), uuid.UUID(task_id)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError) as error:
        raise InvalidInput(
            "cursor: not a cursor this API returned; pass `next_cursor` from the previous page unchanged.",
            field="cursor",
        ) from error


def _reminders_json(reminders: list[ReminderSpec]) -> list[dict[str, Any]]:
    return [reminder.to_json() for reminder in reminders]


class TaskService:
    def __init__(
        self,
        workflows: WorkflowGateway,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.workflows = workflows
        self.settings = settings
        self.clock = clock

    # ---- reads ----------------------------------------------------------------

    def _owned_task(self, session: Session, user: User, task_id: uuid.UUID, *, lock: bool = False) -> Task:
        statement = select(Task).where(Task.id == task_id, Task.user_id == user.id)
        if lock:
            statement = statement.with_for_update()
        task = session.exec(statement).first()
        if task is None:
            # Another user's task is indistinguishable from a missing one.
            raise NotFound(f"No task {task_id} exists for this user.", field="task_id")
        return task

    def _owned_series(
        self, session: Session, user: User, series_id: uuid.UUID, *, lock: bool = False
    ) -> Series:
        statement = select(Series).where(Series.id == series_id, Series.user_id == user.id)
        if lock:
            statement = statement.with_for_update()
        series = session.exec(statement).first()
        if series is None:
            raise NotFound(f"No series {series_id} exists for this user.", field="series_id")
        return series

    def _public(self, session: Session, task: Task, series: Series | None = None) -> TaskPublic:
        if task.series_id is not None and series is None:
            series = session.get(Series, task.series_id)
        spec = (
            RecurrenceSpec(rule=series.rule, timezone=series.timezone, basis=series.basis)
            if series is not None
            else None
        )
        return TaskPublic.model_validate(
            {
                **task.model_dump(exclude={"reminders"}),
                "reminders": [ReminderSpec.model_validate(r) for r in task.reminders],
                "recurrence": spec,
            }
        )

    # ---- events (written to the outbox in the change's transaction) ------------

    def _snapshot(self, session: Session, task: Task, series: Series | None = None) -> dict[str, Any]:
        return _task_json(self._public(session, task, series))

    def _emit(
        self, session: Session, event_type: events.EventType, task: Task, payload: dict[str, Any]
    ) -> None:
        record_event(
            session,
            events.new_event(
                event_type,
                user_id=task.user_id,
                task_id=task.id,
                series_id=task.series_id,
                payload=payload,
                occurred_at=self.clock(),
            ),
        )

    def _emit_change(
        self,
        session: Session,
        event_type: events.EventType,
        task: Task,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        """A change of an existing task: its lifecycle event on task-events and
        the field-level diff on task-updates. Nothing if nothing changed."""
        changes = events.diff(before, after)
        if not changes:
            return
        self._emit(session, event_type, task, {"task": after, "changes": changes})
        self._emit(session, events.TASK_CHANGED, task, {"changes": changes})

    def get_task(self, user: User, task_id: uuid.UUID) -> TaskPublic:
        with session_scope() as session:
            return self._public(session, self._owned_task(session, user, task_id))

    def list_tasks(self, user: User, query: TaskQuery) -> TaskPage:
        if not 1 <= query.limit <= 200:
            raise InvalidInput("limit: must be between 1 and 200.", field="limit")
        statement = select(Task).where(Task.user_id == user.id)
        if query.status != "all":
            statement = statement.where(Task.status == query.status)
        if query.due_before is not None:
            statement = statement.where(col(Task.due_at) < query.due_before)
        if query.due_after is not None:
            statement = statement.where(col(Task.due_at) > query.due_after)
        if query.series_id is not None:
            statement = statement.where(Task.series_id == query.series_id)
        if query.tag is not None:
            statement = statement.where(col(Task.tags).contains([query.tag]))
        if query.cursor:
            created, task_id = _decode_cursor(query.cursor)
            statement = statement.where(
                or_(
                    col(Task.created_at) > created,
                    and_(col(Task.created_at) == created, col(Task.id) > task_id),
                )
            )
        statement = statement.order_by(col(Task.created_at), col(Task.id)).limit(query.limit + 1)
        with session_scope() as session:
            rows = list(session.exec(statement))
            page = rows[: query.limit]
            series_ids = {t.series_id for t in page if t.series_id is not None}
            series = (
                {s.id: s for s in session.exec(select(Series).where(col(Series.id).in_(series_ids)))}
                if series_ids
                else {}
            )
            items = [self._public(session, t, series.get(t.series_id) if t.series_id else None) for t in page]
        next_cursor = _encode_cursor(page[-1]) if len(rows) > query.limit else None
        return TaskPage(items=items, next_cursor=next_cursor)

    # ---- task changes ---------------------------------------------------------

    def _parse_recurrence(
        self, spec: RecurrenceSpec, dtstart: datetime, prefix: str
    ) -> recurrence.Recurrence:
        try:
            return recurrence.parse(
                spec.rule,
                timezone=spec.timezone,
                dtstart=dtstart,
                basis=spec.basis.value,
                min_interval=self.settings.min_recurrence_interval,
            )
        except recurrence.RecurrenceError as error:
            raise _recurrence_error(error, prefix) from error

    def create_task(self, user: User, data: TaskCreate) -> TaskPublic:
        now = self.clock()
        task = Task(
            user_id=user.id,
            title=data.title,
            description=data.description,
            priority=data.priority,
            tags=data.tags,
            due_at=data.due_at,
            reminders=_reminders_json(data.reminders),
            created_at=now,
            updated_at=now,
        )
        series: Series | None = None
        if data.recurrence is not None:
            if data.due_at is None:
                raise InvalidInput(
                    "due_at: a recurring task needs its first due date-time (RFC 3339, e.g. "
                    "2026-12-01T09:00:00-05:00); the rule repeats from there.",
                    field="due_at",
                )
            rec = self._parse_recurrence(data.recurrence, data.due_at, "recurrence.")
            series = self._new_series(user, task, rec, now)
        with session_scope() as session:
            if series is not None:
                session.add(series)
                session.flush()
            session.add(task)
            session.flush()
            public = self._public(session, task, series)
            self._emit(session, events.TASK_CREATED, task, {"task": _task_json(public)})
        if series is not None:
            self._start_workflow(series)
        return public

    def _new_series(self, user: User, task: Task, rec: recurrence.Recurrence, now: datetime) -> Series:
        """A series whose occurrence #1 is `task` (due at the rule's first occurrence)."""
        series = Series(
            id=uuid.uuid4(),
            user_id=user.id,
            rule=rec.rule,
            timezone=rec.timezone,
            basis=Basis(rec.basis),
            dtstart=rec.dtstart,
            anchor_at=rec.dtstart,
            occurrence_index=1,
            rule_index=1,
            current_task_id=task.id,
            occurrences_created=1,
            template=self._template(task),
            created_at=now,
            updated_at=now,
        )
        task.series_id = series.id
        task.occurrence_index = 1
        task.due_at = rec.dtstart
        return series

    @staticmethod
    def _template(task: Task) -> dict[str, Any]:
        """What each next occurrence copies; `at` reminders are absolute, so
        only `before` offsets carry over."""
        return {
            "title": task.title,
            "description": task.description,
            "priority": str(task.priority),
            "tags": list(task.tags),
            "reminders": [r for r in task.reminders if "before" in r],
        }

    def update_task(self, user: User, task_id: uuid.UUID, data: TaskUpdate) -> TaskPublic:
        changes = data.model_dump(exclude_unset=True)
        if not changes:
            raise InvalidInput("The body changes nothing: give at least one field to update.", field="body")
        for required in ("title", "priority", "tags", "reminders"):
            if required in changes and changes[required] is None:
                raise InvalidInput(
                    f"{required}: cannot be null; omit it to leave it unchanged.", field=required
                )
        now = self.clock()
        started: Series | None = None
        changed_series: Series | None = None
        with session_scope() as session:
            task = self._owned_task(session, user, task_id, lock=True)
            series = session.get(Series, task.series_id, with_for_update=True) if task.series_id else None
            before = self._snapshot(session, task, series)
            for name in ("title", "description", "priority", "tags", "due_at"):
                if name in data.model_fields_set:
                    setattr(task, name, getattr(data, name))
            if data.reminders is not None:
                task.reminders = _reminders_json(data.reminders)
            if "recurrence" in data.model_fields_set:
                if data.recurrence is None:
                    raise InvalidInput(
                        "recurrence: to end a series use DELETE /v1/tasks/{id}?scope=series or "
                        "POST /v1/series/{id}/stop.",
                        field="recurrence",
                    )
                anchor = task.due_at
                if anchor is None:
                    raise InvalidInput("due_at: a recurring task needs a due date-time.", field="due_at")
                rec = self._parse_recurrence(data.recurrence, anchor, "recurrence.")
                if series is None:
                    if task.status != TaskStatus.pending:
                        raise Conflict("Only a pending task can become recurring.", field="recurrence")
                    series = self._new_series(user, task, rec, now)
                    session.add(series)
                    started = series
                else:
                    self._change_rule(series, task, rec, now)
                    changed_series = series
            if series is not None:
                series.template = self._template(task)
                series.updated_at = now
                if task.id == series.current_task_id and task.due_at is not None and "due_at" in changes:
                    series.anchor_at = task.due_at
                    changed_series = series
            task.updated_at = now
            session.flush()
            public = self._public(session, task, series)
            self._emit_change(session, events.TASK_UPDATED, task, before, _task_json(public))
        if started is not None:
            self._start_workflow(started)
        if changed_series is not None:
            self._notify(changed_series.id, SERIES_CHANGED)
        return public

    @staticmethod
    def _change_rule(series: Series, task: Task, rec: recurrence.Recurrence, now: datetime) -> None:
        """A new rule counts from the current occurrence: it becomes #1 of the
        new rule (so a new COUNT means "N more including this one")."""
        series.rule = rec.rule
        series.timezone = rec.timezone
        series.basis = Basis(rec.basis)
        series.dtstart = rec.dtstart
        series.anchor_at = rec.dtstart
        series.rule_index = 1
        if task.id == series.current_task_id:
            task.due_at = rec.dtstart
        series.updated_at = now

    def complete_task(self, user: User, task_id: uuid.UUID) -> TaskPublic:
        """Idempotent: completing a completed task returns it unchanged."""
        now = self.clock()
        with session_scope() as session:
            task = self._owned_task(session, user, task_id, lock=True)
            if task.status == TaskStatus.skipped:
                raise Conflict("This occurrence was skipped; it cannot be completed.", field="task_id")
            newly_completed = task.status == TaskStatus.pending
            before = self._snapshot(session, task)
            if newly_completed:
                task.status = TaskStatus.completed
                task.completed_at = now
                task.updated_at = now
            public = self._public(session, task)
            if newly_completed:
                self._emit_change(session, events.TASK_COMPLETED, task, before, _task_json(public))
        if task.series_id is not None:
            # Raised again on a repeated completion too: harmless (the workflow
            # reconciles), and it recovers a wake-up lost the first time.
            self._notify(
                task.series_id,
                TASK_COMPLETED,
                {"task_id": str(task.id), "occurrence_index": task.occurrence_index},
            )
        return public

    def delete_task(self, user: User, task_id: uuid.UUID, scope: DeleteScope = "occurrence") -> None:
        now = self.clock()
        event: str | None = None
        with session_scope() as session:
            task = self._owned_task(session, user, task_id, lock=True)
            series = session.get(Series, task.series_id, with_for_update=True) if task.series_id else None
            deleted: set[uuid.UUID] = set()
            if series is not None and scope == "series":
                deleted = self._stop(session, series, now)
                event = SERIES_STOPPED
            elif series is not None and task.id == series.current_task_id:
                # Deleting the current occurrence moves the series on, like a skip.
                event = OCCURRENCE_SKIPPED
            if task.id not in deleted:
                self._emit_deleted(session, task, series, scope)
            session.delete(task)
        if series is not None and event is not None:
            self._notify(series.id, event)

    # ---- series -----------------------------------------------------------

    def get_series(self, user: User, series_id: uuid.UUID) -> SeriesPublic:
        with session_scope() as session:
            series = self._owned_series(session, user, series_id)
            current = session.get(Task, series.current_task_id) if series.current_task_id else None
            current_public = self._public(session, current, series) if current is not None else None
        try:
            text = recurrence.describe(self._recurrence_of(series))
        except recurrence.RecurrenceError:
            text = series.rule
        workflow = self._describe_workflow(instance_id(series.id))
        return SeriesPublic(
            id=series.id,
            user_id=series.user_id,
            rule=series.rule,
            timezone=series.timezone,
            basis=series.basis,
            text=text,
            status=series.status,
            current_task=current_public,
            next_due_at=rfc3339(series.anchor_at) if series.status in _LIVE else None,
            occurrence_index=series.occurrence_index,
            occurrences_created=series.occurrences_created,
            created_at=rfc3339(series.created_at) or "",
            updated_at=rfc3339(series.updated_at) or "",
            ended_at=rfc3339(series.ended_at),
            workflow=WorkflowStatusPublic(
                instance_id=instance_id(series.id),
                runtime_status=workflow.runtime_status if workflow else None,
                custom_status=_json_or_none(workflow.serialized_custom_status) if workflow else None,
            ),
        )

    def _describe_workflow(self, instance: str) -> WorkflowInfo | None:
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
        with session_scope() as session:
            try:
                series = self._owned_series(session, user, series_id)
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

    def control_series(
        self, user: User, series_id: uuid.UUID, action: Literal["pause", "resume", "skip", "stop"]
    ) -> SeriesPublic:
        now = self.clock()
        with session_scope() as session:
            series = self._owned_series(session, user, series_id, lock=True)
            if series.status in (SeriesStatus.stopped, SeriesStatus.finished):
                raise Conflict(f"The series is {series.status}; it cannot {action}.", field="series_id")
            if action == "pause":
                series.status = SeriesStatus.paused
                event = SERIES_PAUSED
            elif action == "resume":
                series.status = SeriesStatus.active
                event = SERIES_RESUMED
            elif action == "stop":
                self._stop(session, series, now)
                event = SERIES_STOPPED
            else:
                self._skip_current(session, series, now)
                event = OCCURRENCE_SKIPPED
            series.updated_at = now
        self._notify(series.id, event)
        return self.get_series(user, series_id)

    def skip_occurrence(self, user: User, task_id: uuid.UUID) -> SeriesPublic:
        """Skip the occurrence `task_id` (it must be its series' current one)."""
        with session_scope() as session:
            task = self._owned_task(session, user, task_id)
            if task.series_id is None:
                raise InvalidInput(
                    "task_id: this task does not recur; complete or delete it instead.", field="task_id"
                )
            series_id = task.series_id
        return self.control_series(user, series_id, "skip")

    def _skip_current(self, session: Session, series: Series, now: datetime) -> None:
        current = (
            session.get(Task, series.current_task_id, with_for_update=True)
            if series.current_task_id
            else None
        )
        if current is None or current.status != TaskStatus.pending:
            raise Conflict("The current occurrence is no longer pending; nothing to skip.", field="series_id")
        before = self._snapshot(session, current, series)
        current.status = TaskStatus.skipped
        current.updated_at = now
        self._emit_change(
            session, events.TASK_UPDATED, current, before, self._snapshot(session, current, series)
        )

    def _stop(self, session: Session, series: Series, now: datetime) -> set[uuid.UUID]:
        """Stopping ends the series: its pending occurrence goes away with it;
        completed occurrences stay as history. Returns the deleted task ids."""
        series.status = SeriesStatus.stopped
        series.ended_at = now
        series.updated_at = now
        pending = session.exec(
            select(Task).where(Task.series_id == series.id, Task.status == TaskStatus.pending)
        )
        deleted = set()
        for task in pending:
            self._emit_deleted(session, task, series, "series")
            session.delete(task)
            deleted.add(task.id)
        return deleted

    def _emit_deleted(self, session: Session, task: Task, series: Series | None, scope: DeleteScope) -> None:
        self._emit(
            session,
            events.TASK_DELETED,
            task,
            {"task": self._snapshot(session, task, series), "scope": scope},
        )

    # ---- preview --------------------------------------------------------------

    def preview(self, rule: str, dtstart: datetime, timezone: str, limit: int) -> Preview:
        try:
            rec = recurrence.parse(
                rule, timezone=timezone, dtstart=dtstart, min_interval=self.settings.min_recurrence_interval
            )
        except recurrence.RecurrenceError as error:
            raise _recurrence_error(error, "") from error
        return Preview(
            occurrences=[rfc3339(o) or "" for o in recurrence.occurrences(rec, limit)],
            text=recurrence.describe(rec),
        )

    # ---- workflow side (called by activities) ---------------------------------

    @staticmethod
    def _recurrence_of(series: Series) -> recurrence.Recurrence:
        return recurrence.Recurrence(
            rule=series.rule,
            timezone=series.timezone,
            dtstart=series.dtstart,
            basis=Basis(series.basis).value,
        )

    def load_series_progress(self, series_id: str) -> SeriesProgress:
        with session_scope() as session:
            series = session.get(Series, uuid.UUID(series_id))
            if series is None:
                return SeriesProgress(
                    status="missing",
                    rule="",
                    timezone="UTC",
                    basis="schedule",
                    dtstart="",
                    anchor="",
                    occurrence_index=0,
                    rule_index=1,
                    current_task_id=None,
                    current_task_status="missing",
                    completed_at=None,
                )
            current = session.get(Task, series.current_task_id) if series.current_task_id else None
            return SeriesProgress(
                status=str(series.status),
                rule=series.rule,
                timezone=series.timezone,
                basis=str(series.basis),
                dtstart=_iso(series.dtstart),
                anchor=_iso(series.anchor_at),
                occurrence_index=series.occurrence_index,
                rule_index=series.rule_index,
                current_task_id=str(series.current_task_id) if series.current_task_id else None,
                current_task_status=str(current.status) if current is not None else "missing",
                completed_at=_iso(current.completed_at)
                if current is not None and current.completed_at
                else None,
            )

    def create_next_occurrence(self, step: NextOccurrence) -> CreatedOccurrence:
        """Create occurrence `step.occurrence_index` and make it current.

        Idempotent: the unique key (series_id, occurrence_index) makes a retry
        or replay find the row created the first time instead of a second one.
        """
        series_id = uuid.UUID(step.series_id)
        due_at = _parse_iso(step.due_at)
        now = self.clock()
        with session_scope() as session:
            series = session.get(Series, series_id, with_for_update=True)
            if series is None:
                raise NotFound(f"Series {series_id} no longer exists.", field="series_id")
            template = series.template
            inserted = session.execute(
                insert(Task)
                .values(
                    id=uuid.uuid4(),
                    user_id=series.user_id,
                    title=template["title"],
                    description=template.get("description"),
                    priority=template.get("priority", "medium"),
                    tags=template.get("tags", []),
                    status=TaskStatus.pending.value,
                    due_at=due_at,
                    reminders=template.get("reminders", []),
                    series_id=series_id,
                    occurrence_index=step.occurrence_index,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(constraint="uq_tasks_series_occurrence")
                .returning(col(Task.id))
            ).first()
            task = session.exec(
                select(Task).where(
                    Task.series_id == series_id, Task.occurrence_index == step.occurrence_index
                )
            ).one()
            if inserted is not None:
                # Only the first run of the activity creates the task, so only it emits.
                self._emit(
                    session, events.TASK_CREATED, task, {"task": self._snapshot(session, task, series)}
                )
            if series.occurrence_index < step.occurrence_index:
                series.occurrences_created += 1
                series.occurrence_index = step.occurrence_index
                series.rule_index = step.rule_index
                series.anchor_at = due_at
                series.current_task_id = task.id
                series.updated_at = now
            return CreatedOccurrence(
                task_id=str(task.id), occurrence_index=step.occurrence_index, due_at=step.due_at
            )

    def finish_series(self, finished: FinishedSeries) -> None:
        now = self.clock()
        with session_scope() as session:
            session.execute(
                update(Series)
                .where(
                    col(Series.id) == uuid.UUID(finished.series_id),
                    col(Series.status) != SeriesStatus.stopped,
                )
                .values(status=SeriesStatus.finished, ended_at=now, updated_at=now)
            )

    # ---- wake-ups and the sweeper ---------------------------------------------

    def initial_state(self, series: Series) -> SeriesState:
        return SeriesState(
            series_id=str(series.id),
            user_id=series.user_id,
            rule=series.rule,
            timezone=series.timezone,
            basis=str(series.basis),
            dtstart=_iso(series.dtstart),
            anchor=_iso(series.anchor_at),
            occurrence_index=series.occurrence_index,
            rule_index=series.rule_index,
            current_task_id=str(series.current_task_id),
            paused=series.status == SeriesStatus.paused,
            grace_seconds=self.settings.series_grace_seconds,
            reconcile_seconds=self.settings.series_reconcile_seconds,
        )

    def _start_workflow(self, series: Series) -> None:
        try:
            self.workflows.start_series(self.initial_state(series))
        except Exception:
            log.warning(
                "starting the workflow of series %s failed; the sweeper retries", series.id, exc_info=True
            )
            return
        with session_scope() as session:
            session.execute(
                update(Series)
                .where(col(Series.id) == series.id, col(Series.workflow_started_at).is_(None))
                .values(workflow_started_at=self.clock())
            )

    def _notify(self, series_id: uuid.UUID, event: str, data: dict[str, Any] | None = None) -> None:
        try:
            self.workflows.notify(str(series_id), event, data)
        except Exception:
            log.warning(
                "raising %s on series %s failed; reconciliation catches up", event, series_id, exc_info=True
            )

    def sweep(self, *, older_than: timedelta = timedelta(seconds=10), batch: int = 100) -> dict[str, int]:
        """Repair what a crash between a commit and its workflow call left
        behind: series whose workflow never started, and completed or skipped
        occurrences whose series did not move on. Safe on several replicas
        (rows are claimed with SKIP LOCKED)."""
        cutoff = self.clock() - older_than
        with session_scope() as session:
            unstarted = list(
                session.exec(
                    select(Series)
                    .where(
                        col(Series.workflow_started_at).is_(None),
                        col(Series.status).in_([SeriesStatus.active, SeriesStatus.paused]),
                        col(Series.created_at) < cutoff,
                    )
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            )
            stalled = list(
                session.exec(
                    select(Series.id)
                    .join(Task, col(Task.id) == col(Series.current_task_id))
                    .where(
                        col(Series.status) == SeriesStatus.active,
                        col(Task.status).in_([TaskStatus.completed, TaskStatus.skipped]),
                        col(Task.updated_at) < cutoff,
                    )
                    .limit(batch)
                )
            )
        for series in unstarted:
            self._start_workflow(series)
        for series_id in stalled:
            self._notify(series_id, TASK_COMPLETED)
        return {"started": len(unstarted), "nudged": len(stalled)}


_LIVE = (SeriesStatus.active, SeriesStatus.paused)


def workflow_public(info: WorkflowInfo, series_id: uuid.UUID | None) -> WorkflowPublic:
    return WorkflowPublic(
        instance_id=info.instance_id,
        series_id=series_id,
        name=info.name,
        runtime_status=info.runtime_status,
        custom_status=_json_or_none(info.serialized_custom_status),
        created_at=rfc3339(info.created_at),
        last_updated_at=rfc3339(info.last_updated_at),
        input=_parsed_json(info.serialized_input),
        output=_parsed_json(info.serialized_output),
        failure_details=info.failure_details,
    )


def _parsed_json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _task_json(public: TaskPublic) -> dict[str, Any]:
    """A task as events carry it. Enum columns read back from the database are
    plain strings (SQLModel does not coerce them), which pydantic would warn
    about; they serialize to the same JSON either way."""
    return public.model_dump(mode="json", warnings=False)


def _json_or_none(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {"raw": text}
    return value if isinstance(value, dict) else {"value": value}


@lru_cache(maxsize=1)
def default_service() -> TaskService:
    """The process-wide service, for entry points that are not FastAPI
    routes (workflow activities, job callbacks, the sweeper)."""
    from todos.dapr_gateway import DaprWorkflowGateway
    from todos.settings import get_settings

    return TaskService(DaprWorkflowGateway(), get_settings())
