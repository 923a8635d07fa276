"""The one place for task and series rules. REST routes, MCP tools, the Dapr
job callback, subscriptions and workflow activities all call this module.

Each operation is one database transaction; calls to the workflow engine
and the Jobs API happen after the commit. Workflow calls are only wake-ups
(the workflow reconciles with the database) and a reminder's job is armed
again until Dapr confirms it, so a failed call delays a step and never loses
one: the sweeper (`sweep`) retries what did not get through.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal, TypeVar

from sqlalchemy import and_, bindparam, func, or_, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, col, select

from todos import events, logs, recurrence, reminders
from todos.dapr_gateway import ENDED_STATUSES, JobGateway, WorkflowGateway, WorkflowInfo
from todos.db import session_scope
from todos.errors import Conflict, InvalidInput, NotFound, Unavailable
from todos.job_calls import DeleteJob, JobAction, JobCalls, ScheduleJob
from todos.metrics import (
    COMPLETION_TO_NEXT,
    OCCURRENCES_CREATED,
    REMINDER_LATENESS,
    REMINDERS_FAILED,
    REMINDERS_SENT,
    TASKS_COMPLETED,
    TASKS_CREATED,
)
from todos.models import (
    Basis,
    RecurrenceSpec,
    Reminder,
    ReminderPublic,
    ReminderSpec,
    ReminderStatus,
    Series,
    SeriesPublic,
    SeriesStatus,
    Task,
    TaskCreate,
    TaskPage,
    TaskPublic,
    TaskStatus,
    TaskUpdate,
    WorkflowFailurePublic,
    WorkflowPublic,
    WorkflowStatusPublic,
    rfc3339,
    utcnow,
)
from todos.orchestration import (
    OCCURRENCE_SKIPPED,
    RULE_CHANGED,
    SENTINEL_FREE_WAITS,
    SERIES_CHANGED,
    SERIES_ENDED,
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

# Bulk updates of reminder rows that are not loaded in the session: skip
# SQLAlchemy's matching of the criteria against loaded objects (measurable
# CPU when many reminders fire at once).
_UNSYNCED = {"synchronize_session": False}


@dataclass(frozen=True)
class User:
    id: str
    email: str | None = None
    # IANA zone from the token's `zoneinfo` claim: how reminder emails show times.
    timezone: str | None = None


@dataclass
class ReminderSync:
    """What `_sync_reminders` did: the Dapr job calls to make after the
    commit, the task's reminder rows as they now stand (by `n`), and those it
    (re)armed, whose events `_emit_armed` writes after the task's own."""

    jobs: list[JobAction]
    rows: list[Reminder]
    armed: list[Reminder]


@dataclass(frozen=True)
class ReminderClaim:
    """A job callback's exclusive right to send one reminder (until its lease ends)."""

    reminder_id: uuid.UUID
    token: uuid.UUID
    scheduled_for: datetime
    email: reminders.ReminderEmail


@dataclass(frozen=True)
class NotYet:
    """The job fired before the reminder's time (clocks differ): wait this long."""

    seconds: float


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


def _schedule_of(series: Series) -> dict[str, Any]:
    """The `SeriesSchedule` fields of a series row."""
    return {
        "rule": series.rule,
        "timezone": series.timezone,
        "basis": str(series.basis),
        "dtstart": _iso(series.dtstart),
        "anchor": _iso(series.anchor_at),
        "occurrence_index": series.occurrence_index,
        "rule_index": series.rule_index,
    }


# The rows a user owns and reaches by id.
_Owned = TypeVar("_Owned", Task, Series)


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


def _reminders_json(specs: list[ReminderSpec]) -> list[dict[str, Any]]:
    return [spec.to_json() for spec in specs]


def _reminder_public(row: Reminder) -> ReminderPublic:
    return ReminderPublic(
        index=row.n,
        task_id=row.task_id,
        remind_at=row.remind_at,
        scheduled_for=row.scheduled_for,
        status=row.status,
        sent_at=row.sent_at,
        attempts=row.attempts,
        failure_reason=row.failure_reason,
    )


def _check_reminder_times(task: Task, field_prefix: str | None) -> None:
    """`before` counts back from due_at, so it needs one. `field_prefix` is
    "reminders" when the body set them, else the error names due_at."""
    if task.due_at is not None:
        return
    for n, spec in enumerate(task.reminders):
        if "before" in spec:
            field = f"{field_prefix}.{n}.before" if field_prefix else "due_at"
            raise InvalidInput(
                f"{field}: a `before` reminder counts back from due_at, and the task has none; "
                "give due_at, use {at: RFC 3339 time} instead, or remove the reminder.",
                field=field,
            )


def _next_due(series: Series, current: TaskPublic | None) -> str | None:
    """A live series' current due time: its current task's, which may have been
    moved off the rule's slot (the anchor)."""
    if series.status not in _LIVE:
        return None
    due = current.due_at if current is not None and current.due_at is not None else series.anchor_at
    return rfc3339(due)


def _refusal(series: Series, step: NextOccurrence) -> str | None:
    """Why `step` must not create its occurrence: the series was stopped, or its
    rule changed, after the workflow read it (both commit under the series'
    lock, which the step now holds, so this is the last word)."""
    if series.status not in _LIVE:
        return SERIES_ENDED
    if step.rule is not None and (step.rule, step.timezone, step.basis, step.dtstart) != (
        series.rule,
        series.timezone,
        str(series.basis),
        _iso(series.dtstart),
    ):
        return RULE_CHANGED
    return None


def _check_rule_change(series: Series, task: Task) -> None:
    """A new rule counts from the series' current occurrence, so only that
    one, in a live series, can take it: through an older occurrence its due
    date would become the new start, and the weeks since would use up COUNT."""
    if series.status not in _LIVE:
        raise Conflict(
            f"recurrence: the series has ended ({series.status}); create a new recurring task instead.",
            field="recurrence",
        )
    if task.id != series.current_task_id:
        current = (
            f"task {series.current_task_id} (occurrence #{series.occurrence_index})"
            if series.current_task_id
            else "being created"
        )
        raise Conflict(
            f"recurrence: a rule change applies from the series' current occurrence, and this task is "
            f"occurrence #{task.occurrence_index}; the current one is {current}: change the rule there.",
            field="recurrence",
        )


class StartedWorkflows:
    """Series whose workflow daprd accepted, waiting to be recorded as
    started (`workflow_started_at`) many at a time: one statement per batch
    instead of a transaction per series created (docs/performance.md).

    Until recorded, a series looks unstarted to the sweeper. The sweeper
    records this process's batch before it looks, and a start it makes
    anyway (another replica's series, or one whose record a crash lost)
    finds the instance (AlreadyExists) and only records it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[uuid.UUID, datetime] = {}

    def add(self, series_id: uuid.UUID, at: datetime) -> None:
        with self._lock:
            self._pending.setdefault(series_id, at)

    def take(self) -> dict[uuid.UUID, datetime]:
        with self._lock:
            taken, self._pending = self._pending, {}
        return taken

    def give_back(self, batch: dict[uuid.UUID, datetime]) -> None:
        """A batch whose recording failed, for the next attempt."""
        with self._lock:
            # A start added since the batch was taken keeps its own time, as `add` would.
            self._pending = batch | self._pending


_RECORD_STARTED = (
    update(Series)
    .where(col(Series.id) == bindparam("series_id"), col(Series.workflow_started_at).is_(None))
    .values(workflow_started_at=bindparam("started_at"))
)


class TaskService:
    def __init__(
        self,
        workflows: WorkflowGateway,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
        *,
        jobs: JobGateway,
    ) -> None:
        self.workflows = workflows
        self.settings = settings
        self.clock = clock
        self.jobs = jobs
        self.job_calls = JobCalls(
            jobs, self._record_armed, lanes=settings.job_call_lanes, capacity=settings.job_call_queue
        )
        self.started = StartedWorkflows()

    # ---- reads ----------------------------------------------------------------

    @staticmethod
    def _owned(
        session: Session, model: type[_Owned], user: User, row_id: uuid.UUID, *, lock: bool = False
    ) -> _Owned:
        statement = select(model).where(model.id == row_id, model.user_id == user.id)
        if lock:
            statement = statement.with_for_update()
        row = session.exec(statement).first()
        if row is None:
            # Another user's row is indistinguishable from a missing one.
            noun = model.__name__.lower()
            raise NotFound(f"No {noun} {row_id} exists for this user.", field=f"{noun}_id")
        return row

    def _owned_task(self, session: Session, user: User, task_id: uuid.UUID, *, lock: bool = False) -> Task:
        task = self._owned(session, Task, user, task_id, lock=lock)
        logs.annotate(task_id=task.id)
        return task

    def _owned_series(
        self, session: Session, user: User, series_id: uuid.UUID, *, lock: bool = False
    ) -> Series:
        return self._owned(session, Series, user, series_id, lock=lock)

    def _public(
        self,
        session: Session,
        task: Task,
        series: Series | None = None,
        rows: list[Reminder] | None = None,
    ) -> TaskPublic:
        if task.series_id is not None and series is None:
            series = session.get(Series, task.series_id)
        if rows is None:
            rows = self._reminder_rows(session, [task.id]).get(task.id, [])
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
                "reminder_status": [_reminder_public(row) for row in rows],
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

    @staticmethod
    def _reminder_rows(
        session: Session, task_ids: list[uuid.UUID], *, refresh: bool = False
    ) -> dict[uuid.UUID, list[Reminder]]:
        """Each task's reminder rows; `refresh` reloads rows already in the
        session (after a bulk UPDATE, which does not touch them)."""
        by_task: dict[uuid.UUID, list[Reminder]] = {}
        if task_ids:
            statement = select(Reminder).where(col(Reminder.task_id).in_(task_ids)).order_by(col(Reminder.n))
            if refresh:
                statement = statement.execution_options(populate_existing=True)
            for row in session.exec(statement):
                by_task.setdefault(row.task_id, []).append(row)
        return by_task

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
            reminder_rows = self._reminder_rows(session, [t.id for t in page])
            items = [
                self._public(
                    session,
                    t,
                    series.get(t.series_id) if t.series_id else None,
                    reminder_rows.get(t.id, []),
                )
                for t in page
            ]
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
                # A request may not spend more than its share of CPU on a rule (RULE_TOO_SPARSE past it).
                budget=recurrence.Budget(),
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
            notify_email=user.email,
            notify_timezone=user.timezone,
            created_at=now,
            updated_at=now,
        )
        _check_reminder_times(task, "reminders")
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
            sync = self._sync_reminders(session, task, now, new=True)
            public = self._public(session, task, series, sync.rows)
            self._emit(session, events.TASK_CREATED, task, {"task": _task_json(public)})
            self._emit_armed(session, task, sync)
        logs.annotate(task_id=task.id)
        TASKS_CREATED.labels("one_off" if series is None else "recurring").inc()
        self._apply_jobs(sync.jobs)
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
            "notify_email": task.notify_email,
            "notify_timezone": task.notify_timezone,
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
                if series is not None:
                    _check_rule_change(series, task)
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
                # The anchor stays the occurrence's slot in the rule: a moved occurrence
                # is followed by the rule's next slot after both (recurrence.next_occurrence).
                if task.id == series.current_task_id and "due_at" in changes:
                    changed_series = series
            _check_reminder_times(task, "reminders" if data.reminders is not None else None)
            if task.notify_email is None and user.email is not None:
                task.notify_email = user.email
            task.updated_at = now
            session.flush()
            # Not pending: the rows stay as they are.
            sync = self._sync_reminders(session, task, now) if task.status == TaskStatus.pending else None
            public = self._public(session, task, series, sync.rows if sync else None)
            self._emit_change(session, events.TASK_UPDATED, task, before, _task_json(public))
            if sync is not None:
                self._emit_armed(session, task, sync)
        self._apply_jobs(sync.jobs if sync is not None else [])
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
            series = session.get(Series, task.series_id) if task.series_id is not None else None
            # A pending task's rows mirror its `reminders` (_sync_reminders): none to read.
            has_rows = bool(task.reminders) or not newly_completed
            rows = self._reminder_rows(session, [task.id]).get(task.id, []) if has_rows else []
            before = _task_json(self._public(session, task, series, rows))
            jobs: list[JobAction] = []
            if newly_completed:
                task.status = TaskStatus.completed
                task.completed_at = now
                task.updated_at = now
                # The task row is locked: no reminder row can appear meanwhile.
                if rows:
                    jobs = self._cancel_reminders(session, [task.id], now)
                    rows = self._reminder_rows(session, [task.id], refresh=True).get(task.id, [])
            public = self._public(session, task, series, rows)
            if newly_completed:
                self._emit_change(session, events.TASK_COMPLETED, task, before, _task_json(public))
        if newly_completed:
            TASKS_COMPLETED.inc()
        self._apply_jobs(jobs)
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
            jobs = self._cancel_reminders(session, [task.id], now)
            if series is not None and scope == "series":
                stop_jobs, deleted = self._stop(session, series, now)
                jobs += stop_jobs
                event = SERIES_STOPPED
            elif series is not None and task.id == series.current_task_id:
                # Deleting the current occurrence moves the series on, like a skip.
                event = OCCURRENCE_SKIPPED
            if task.id not in deleted:
                self._emit_deleted(session, task, series, scope)
            # Its reminder rows go with it (ON DELETE CASCADE).
            session.delete(task)
        self._apply_jobs(jobs)
        if series is not None and event is not None:
            self._notify(series.id, event)

    # ---- series -----------------------------------------------------------

    def get_series(self, user: User, series_id: uuid.UUID) -> SeriesPublic:
        series, current_public = self._load_series(user, series_id)
        workflow = self._describe_workflow(instance_id(series.id))
        if workflow is not None and workflow.runtime_status in ENDED_STATUSES and series.status in _LIVE:
            # The workflow ended between the two reads. Its last activity committed the
            # series' end before that (finish_series; a stop commits before it signals),
            # so a second read agrees with the engine.
            series, current_public = self._load_series(user, series_id)
        try:
            text = recurrence.describe(self._recurrence_of(series))
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
            current_task=current_public,
            next_due_at=_next_due(series, current_public),
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

    def _load_series(self, user: User, series_id: uuid.UUID) -> tuple[Series, TaskPublic | None]:
        """The user's series and its current task."""
        with session_scope() as session:
            series = self._owned_series(session, user, series_id)
            current = session.get(Task, series.current_task_id) if series.current_task_id else None
            return series, self._public(session, current, series) if current is not None else None

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
        self,
        user: User,
        series_id: uuid.UUID,
        action: Literal["pause", "resume", "skip", "stop"],
        *,
        occurrence: uuid.UUID | None = None,
    ) -> SeriesPublic:
        """`occurrence`: for a skip, the task the caller means to skip; refused
        unless it is still the current one (a retried call must not skip the
        occurrence created since)."""
        now = self.clock()
        jobs: list[JobAction] = []
        with session_scope() as session:
            series = self._owned_series(session, user, series_id, lock=True)
            if series.status in (SeriesStatus.stopped, SeriesStatus.finished):
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
                jobs, _ = self._stop(session, series, now)
                event = SERIES_STOPPED
            else:
                jobs = self._skip_current(session, series, now, occurrence)
                event = OCCURRENCE_SKIPPED
            series.updated_at = now
        self._apply_jobs(jobs)
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
        return self.control_series(user, series_id, "skip", occurrence=task_id)

    def _skip_current(
        self, session: Session, series: Series, now: datetime, occurrence: uuid.UUID | None
    ) -> list[JobAction]:
        if occurrence is not None and occurrence != series.current_task_id:
            raise Conflict(
                f"task_id: task {occurrence} is not the current occurrence of its series, so it cannot "
                f"be skipped; the current one is task {series.current_task_id} "
                f"(occurrence #{series.occurrence_index}, due {rfc3339(series.anchor_at)}); "
                "skip that one if you mean it.",
                field="task_id",
            )
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
        return self._cancel_reminders(session, [current.id], now)

    def _stop(
        self, session: Session, series: Series, now: datetime
    ) -> tuple[list[JobAction], set[uuid.UUID]]:
        """Stopping ends the series: its pending occurrence goes away with it
        (and its reminders); completed occurrences stay as history. Returns the
        job changes to apply after commit and the deleted task ids."""
        series.status = SeriesStatus.stopped
        series.ended_at = now
        series.updated_at = now
        pending = list(
            session.exec(select(Task).where(Task.series_id == series.id, Task.status == TaskStatus.pending))
        )
        deleted = set()
        jobs = self._cancel_reminders(session, [task.id for task in pending], now)
        for task in pending:
            self._emit_deleted(session, task, series, "series")
            session.delete(task)
            deleted.add(task.id)
        return jobs, deleted

    def _emit_deleted(self, session: Session, task: Task, series: Series | None, scope: DeleteScope) -> None:
        self._emit(
            session,
            events.TASK_DELETED,
            task,
            {"task": self._snapshot(session, task, series), "scope": scope},
        )

    # ---- preview --------------------------------------------------------------

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
            raise _recurrence_error(error, "") from error
        return Preview(occurrences=[rfc3339(o) or "" for o in found], text=recurrence.describe(rec))

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
            # The series and its current task in one round trip.
            found = session.exec(
                select(Series, Task)
                .outerjoin(Task, col(Task.id) == col(Series.current_task_id))
                .where(Series.id == uuid.UUID(series_id))
            ).first()
            if found is None:
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
            series, current = found
            return SeriesProgress(
                **_schedule_of(series),
                status=str(series.status),
                current_task_id=str(series.current_task_id) if series.current_task_id else None,
                current_task_status=str(current.status) if current is not None else "missing",
                completed_at=_iso(current.completed_at)
                if current is not None and current.completed_at
                else None,
                current_due=_iso(current.due_at)
                if current is not None and current.due_at is not None and current.due_at != series.anchor_at
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
            # The series, locked, with when its current occurrence was completed.
            found = session.execute(
                select(Series, Task.occurrence_index, Task.completed_at)
                .outerjoin(Task, col(Task.id) == col(Series.current_task_id))
                .where(Series.id == series_id)
                .with_for_update(of=Series)
            ).first()
            if found is None:
                raise NotFound(f"Series {series_id} no longer exists.", field="series_id")
            series, current_index, current_completed_at = found
            # A retry of a step that committed finds its row below, whatever changed since.
            refused = _refusal(series, step) if series.occurrence_index < step.occurrence_index else None
            if refused is not None:
                log.info(
                    "series %s: occurrence %d not created (%s)", series_id, step.occurrence_index, refused
                )
                return CreatedOccurrence(
                    task_id="", occurrence_index=step.occurrence_index, due_at=step.due_at, refused=refused
                )
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
                    due_at=due_at,
                    reminders=template.get("reminders", []),
                    notify_email=template.get("notify_email"),
                    notify_timezone=template.get("notify_timezone"),
                    series_id=series_id,
                    occurrence_index=step.occurrence_index,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(constraint="uq_tasks_series_occurrence")
                .returning(Task)
            ).first()
            # A retry or replay finds the row its first run created.
            task = (
                inserted
                or session.exec(
                    select(Task).where(
                        Task.series_id == series_id, Task.occurrence_index == step.occurrence_index
                    )
                ).one()
            )
            previous_completed_at: datetime | None = None
            if inserted is not None:
                # Only the first run of the activity creates the task, so only it emits.
                # Its reminder rows come below: none exist yet.
                snapshot = _task_json(self._public(session, task, series, rows=[]))
                self._emit(session, events.TASK_CREATED, task, {"task": snapshot})
                if current_index == step.occurrence_index - 1:
                    previous_completed_at = current_completed_at
            # Rows only: arming their jobs is the next activity's side effect
            # (schedule_task_reminders), so a retry here arms nothing twice.
            pending = task.status == TaskStatus.pending
            jobs: list[JobAction] = []
            if pending:
                sync = self._sync_reminders(session, task, now, new=inserted is not None)
                self._emit_armed(session, task, sync)
                jobs = sync.jobs
            # A retry finds the first run's rows, which may still wait to be armed.
            to_arm = (
                sum(isinstance(job, ScheduleJob) for job in jobs)
                if inserted is not None
                else len(self._unarmed_reminders(session, task.id))
            )
            if series.occurrence_index < step.occurrence_index:
                series.occurrences_created += 1
                series.occurrence_index = step.occurrence_index
                series.rule_index = step.rule_index
                series.anchor_at = due_at
                series.current_task_id = task.id
                series.updated_at = now
            created = CreatedOccurrence(
                task_id=str(task.id),
                occurrence_index=step.occurrence_index,
                due_at=step.due_at,
                reminders_to_arm=to_arm,
            )
        if inserted is not None:
            OCCURRENCES_CREATED.inc()
            if previous_completed_at is not None:
                # After the commit: the time a user waits to see the next occurrence.
                COMPLETION_TO_NEXT.observe((self.clock() - previous_completed_at).total_seconds())
        return created

    @staticmethod
    def series_counts() -> dict[str, int]:
        """Live series by status, for todo_series_active."""
        with session_scope() as session:
            rows = session.execute(
                select(Series.status, func.count())
                .where(col(Series.status).in_(_LIVE))
                .group_by(col(Series.status))
            ).all()
        return {str(status): count for status, count in rows}

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

    # ---- reminders ------------------------------------------------------------
    #
    # Each reminder row moves scheduled -> sending -> sent | failed, or to
    # cancelled / skipped; every transition happens in exactly one method
    # below (_arm, claim_reminder, mark_reminder_sent, mark_reminder_failed,
    # _cancel_reminders), inside the transaction of the change that causes it.
    #
    # Delivery is at-least-once across crashes and exactly-once otherwise: a
    # callback claims the row (scheduled -> sending, with a lease) in one
    # transaction before it talks to SMTP, so a second firing of the job finds
    # it claimed or sent and does nothing. If the app dies after the SMTP
    # server accepted the email but before "sent" is committed, the lease runs
    # out and a later firing sends it again (same Message-ID): a rare duplicate
    # rather than a reminder silently lost.

    def _sync_reminders(
        self, session: Session, task: Task, now: datetime, *, new: bool = False
    ) -> ReminderSync:
        """Make the task's reminder rows match its `reminders` and due time.
        A row whose spec and time are unchanged is left alone (a sent
        reminder stays sent); any other is re-armed for its new time. A task
        `new` in this transaction has no rows to read."""
        rows: dict[int, Reminder] = {}
        if not new:
            locked = session.exec(select(Reminder).where(Reminder.task_id == task.id).with_for_update())
            rows = {row.n: row for row in locked}
        sync = ReminderSync(jobs=[], rows=[], armed=[])
        for n, spec in enumerate(task.reminders):
            plan = reminders.plan(spec, task.due_at, now, task.notify_email)
            row = rows.pop(n, None)
            unchanged = row is not None and row.spec == spec and row.remind_at == plan.remind_at
            if row is None:
                row = Reminder(task_id=task.id, n=n, spec=spec, generation=0, created_at=now)
                session.add(row)
            sync.rows.append(row)
            if unchanged:
                continue
            sync.jobs += self._arm(row, spec, plan, now)
            sync.armed.append(row)
        for row in rows.values():
            if row.status == ReminderStatus.scheduled:
                sync.jobs.append(DeleteJob(reminders.job_name(task.id, row.n)))
            session.delete(row)
        return sync

    @staticmethod
    def _arm(row: Reminder, spec: dict[str, Any], plan: reminders.Plan, now: datetime) -> list[JobAction]:
        """The `scheduled` transition (or straight to skipped/failed when the
        plan says the reminder cannot fire). A new generation makes any firing
        of the job's previous schedule a no-op."""
        had_job = row.status == ReminderStatus.scheduled
        row.spec = spec
        row.remind_at = plan.remind_at
        row.scheduled_for = plan.fire_at
        row.generation += 1
        row.status = plan.status
        row.job_scheduled_at = None
        row.claim_token = None
        row.lease_until = None
        row.attempts = 0
        row.sent_at = None
        row.failure_reason = plan.reason
        row.updated_at = now
        data = reminders.JobData(row.task_id, row.n, row.generation)
        if plan.fire_at is not None:
            return [ScheduleJob(row.id, plan.fire_at, data)]
        return [DeleteJob(reminders.job_name(row.task_id, row.n))] if had_job else []

    def _emit_reminder(
        self,
        session: Session,
        event_type: events.ReminderEventType,
        *,
        user_id: str,
        task_id: uuid.UUID,
        series_id: uuid.UUID | None,
        remind_at: datetime | None,
        spec: dict[str, Any],
        error: str | None = None,
    ) -> None:
        """A reminder's state change on the `reminders` topic, in its transaction."""
        if remind_at is None:
            return
        record_event(
            session,
            events.reminder_event(
                event_type,
                user_id=user_id,
                task_id=task_id,
                series_id=series_id,
                remind_at=remind_at,
                reminder=spec,
                error=error,
                occurred_at=self.clock(),
            ),
        )

    def _emit_armed(self, session: Session, task: Task, sync: ReminderSync) -> None:
        """The reminder events of a sync, after the event of the change that
        caused it: a consumer learns of a task before its reminders."""
        for row in sync.armed:
            self._emit_reminder_armed(session, task, row)

    def _emit_reminder_armed(self, session: Session, task: Task, row: Reminder) -> None:
        """`reminder.scheduled` for a (re)armed reminder; `reminder.failed` for
        one that cannot go out (no address to send it to)."""
        event_type: events.ReminderEventType
        if row.status == ReminderStatus.scheduled:
            event_type, error = events.REMINDER_SCHEDULED, None
        elif row.status == ReminderStatus.failed:
            event_type, error = events.REMINDER_FAILED, row.failure_reason
        else:
            return
        self._emit_reminder(
            session,
            event_type,
            user_id=task.user_id,
            task_id=task.id,
            series_id=task.series_id,
            remind_at=row.remind_at,
            spec=row.spec,
            error=error,
        )

    @staticmethod
    def _cancel_reminders(session: Session, task_ids: list[uuid.UUID], now: datetime) -> list[JobAction]:
        """The `cancelled` transition, for tasks completed, skipped or deleted.
        A reminder being sent right now is left to finish."""
        if not task_ids:
            return []
        cancelled = session.execute(
            update(Reminder)
            .where(col(Reminder.task_id).in_(task_ids), col(Reminder.status) == ReminderStatus.scheduled)
            .values(status=ReminderStatus.cancelled, updated_at=now)
            .returning(col(Reminder.task_id), col(Reminder.n)),
            execution_options=_UNSYNCED,
        )
        return [DeleteJob(reminders.job_name(task_id, n)) for task_id, n in cancelled]

    def _apply_jobs(self, jobs: list[JobAction]) -> None:
        """Tell Dapr, after the commit, without holding the caller: the calls go
        out concurrently in the background (todos.job_calls), and a schedule
        that does not get through is left for the sweeper."""
        self.job_calls.submit(jobs)

    def _record_armed(self, jobs: list[ScheduleJob]) -> None:
        """Schedules Dapr confirmed (job_scheduled_at), unless re-armed since."""
        now = self.clock()
        with session_scope() as session:
            for job in jobs:
                session.execute(
                    update(Reminder)
                    .where(
                        col(Reminder.id) == job.reminder_id,
                        col(Reminder.generation) == job.data.generation,
                    )
                    .values(job_scheduled_at=now),
                    execution_options=_UNSYNCED,
                )

    def _arm_now(self, jobs: list[JobAction]) -> int:
        """The job calls made concurrently and waited for; how many got through."""
        return self.job_calls.run(jobs, timeout=self.settings.dapr_call_timeout_seconds + 5)

    def schedule_task_reminders(self, task_id: uuid.UUID) -> int:
        """Arm the jobs of a task's reminders that Dapr has not confirmed yet
        (a new occurrence's, from its workflow). Idempotent: a job is
        overwritten, never doubled."""
        with session_scope() as session:
            rows = self._unarmed_reminders(session, task_id)
        return self._arm_now([self._rearm_job(row) for row in rows])

    @staticmethod
    def _unarmed_reminders(session: Session, task_id: uuid.UUID) -> list[Reminder]:
        """A task's scheduled reminders whose job Dapr has not confirmed."""
        return list(
            session.exec(
                select(Reminder).where(
                    Reminder.task_id == task_id,
                    Reminder.status == ReminderStatus.scheduled,
                    col(Reminder.job_scheduled_at).is_(None),
                )
            )
        )

    def _rearm_job(self, row: Reminder) -> ScheduleJob:
        """The job of a row as it stands; a past time fires at once."""
        assert row.scheduled_for is not None
        return ScheduleJob(
            row.id,
            max(row.scheduled_for, self.clock()),
            reminders.JobData(row.task_id, row.n, row.generation),
        )

    def claim_reminder(self, data: reminders.JobData) -> ReminderClaim | NotYet | str:
        """The `sending` transition, for a firing of a reminder's job: a claim
        to send it, NotYet, or why there is nothing to do.

        One conditional UPDATE claims the row when it is due, of this
        generation, of a pending task and not claimed by a live lease (the
        common case, and the one that has to be cheap when many reminders
        fall due together); only when it claims nothing is the row read to
        say why."""
        now = self.clock()
        token = uuid.uuid4()
        with session_scope() as session:
            claimed = session.execute(
                update(Reminder)
                .where(
                    col(Reminder.task_id) == data.task_id,
                    col(Reminder.n) == data.n,
                    col(Reminder.generation) == data.generation,
                    col(Reminder.scheduled_for) <= now,
                    or_(
                        col(Reminder.status) == ReminderStatus.scheduled,
                        and_(
                            col(Reminder.status) == ReminderStatus.sending, col(Reminder.lease_until) <= now
                        ),
                    ),
                    col(Task.id) == col(Reminder.task_id),
                    col(Task.status) == TaskStatus.pending,
                    col(Task.notify_email).is_not(None),
                )
                .values(
                    status=ReminderStatus.sending,
                    claim_token=token,
                    lease_until=now + self.settings.smtp_budget + timedelta(seconds=60),
                    updated_at=now,
                )
                .returning(
                    col(Reminder.id),
                    col(Reminder.scheduled_for),
                    col(Task.notify_email),
                    col(Task.title),
                    col(Task.description),
                    col(Task.due_at),
                    col(Task.notify_timezone),
                    col(Task.series_id),
                ),
                execution_options=_UNSYNCED,
            ).first()
            if claimed is None:
                return self._why_not_claimed(session, data, now)
            reminder_id, scheduled_for, recipient, title, description, due_at, user_zone, series_id = claimed
            series_zone = (
                session.scalar(select(Series.timezone).where(Series.id == series_id)) if series_id else None
            )
        return ReminderClaim(
            reminder_id=reminder_id,
            token=token,
            scheduled_for=scheduled_for,
            email=reminders.ReminderEmail(
                recipient=recipient,
                title=title,
                description=description,
                due_at=due_at,
                zone=reminders.zone_for(series_zone, user_zone, self.settings.reminder_timezone),
                message_id=reminders.message_id(
                    data.task_id, data.n, data.generation, self.settings.smtp_from
                ),
            ),
        )

    @staticmethod
    def _why_not_claimed(session: Session, data: reminders.JobData, now: datetime) -> NotYet | str:
        row = session.exec(
            select(Reminder).where(Reminder.task_id == data.task_id, Reminder.n == data.n).with_for_update()
        ).first()
        if row is None:
            return "gone"
        if row.generation != data.generation:
            return "superseded"
        task = session.get(Task, row.task_id)
        if task is None or task.status != TaskStatus.pending:
            # Only an abandoned claim can still be open here (closing a task
            # cancels its scheduled reminders); close it so the sweeper stops.
            if row.status == ReminderStatus.sending:
                row.status = ReminderStatus.cancelled
                row.updated_at = now
            return "task-closed"
        if row.status == ReminderStatus.sending and row.lease_until is not None and row.lease_until > now:
            return "in-progress"
        if row.status not in (ReminderStatus.scheduled, ReminderStatus.sending):
            return f"already-{row.status}"
        if row.scheduled_for is not None and row.scheduled_for > now:
            return NotYet((row.scheduled_for - now).total_seconds())
        # It changed between the two statements: let Dapr fire the job again.
        raise Unavailable(f"Reminder {data.n} of task {data.task_id} changed while being claimed; retry.")

    def _finish_claim(
        self, claim: ReminderClaim, event_type: events.ReminderEventType, error: str | None, **values: Any
    ) -> None:
        """Close the claim (sent or failed) and record its event, together.
        The task's owner and series come back from the same statement: a
        reminder row goes with its task (ON DELETE CASCADE), so a row still
        there has its task."""
        with session_scope() as session:
            finished = session.execute(
                update(Reminder)
                .where(
                    col(Reminder.id) == claim.reminder_id,
                    col(Reminder.claim_token) == claim.token,
                    col(Reminder.status) == ReminderStatus.sending,
                    col(Task.id) == col(Reminder.task_id),
                )
                .values(claim_token=None, lease_until=None, updated_at=self.clock(), **values)
                .returning(
                    col(Reminder.task_id),
                    col(Reminder.remind_at),
                    col(Reminder.spec),
                    col(Task.user_id),
                    col(Task.series_id),
                ),
                execution_options=_UNSYNCED,
            ).first()
            if finished is None:
                log.warning(
                    "reminder %s: the claim ran out or was superseded while sending", claim.reminder_id
                )
                return
            task_id, remind_at, spec, user_id, series_id = finished
            self._emit_reminder(
                session,
                event_type,
                user_id=user_id,
                task_id=task_id,
                series_id=series_id,
                remind_at=remind_at,
                spec=spec,
                error=error,
            )

    def mark_reminder_sent(self, claim: ReminderClaim, sent_at: datetime, attempts: int) -> None:
        """The `sent` transition."""
        self._finish_claim(
            claim,
            events.REMINDER_SENT,
            None,
            status=ReminderStatus.sent,
            sent_at=sent_at,
            attempts=col(Reminder.attempts) + attempts,
            failure_reason=None,
        )
        REMINDERS_SENT.inc()
        REMINDER_LATENESS.observe((sent_at - claim.scheduled_for).total_seconds())

    def mark_reminder_failed(
        self, claim: ReminderClaim, reason: str, attempts: int, *, permanent: bool
    ) -> None:
        """The `failed` transition: refused for good, or every attempt failed."""
        self._finish_claim(
            claim,
            events.REMINDER_FAILED,
            reason[:1000],
            status=ReminderStatus.failed,
            attempts=col(Reminder.attempts) + attempts,
            failure_reason=reason[:1000],
        )
        REMINDERS_FAILED.labels("permanent" if permanent else "exhausted").inc()

    def snooze_reminder(self, user: User, task_id: uuid.UUID, minutes: int) -> ReminderPublic:
        """Send the task's most recently sent reminder again `minutes` from now."""
        now = self.clock()
        with session_scope() as session:
            task = self._owned_task(session, user, task_id, lock=True)
            if task.status != TaskStatus.pending:
                raise Conflict(
                    f"The task is {task.status}; only a pending task's reminder can be snoozed.",
                    field="task_id",
                )
            row = session.exec(
                select(Reminder)
                .where(Reminder.task_id == task.id, Reminder.status == ReminderStatus.sent)
                .order_by(col(Reminder.sent_at).desc(), col(Reminder.n).desc())
                .limit(1)
                .with_for_update()
            ).first()
            if row is None:
                raise Conflict(
                    "None of this task's reminders has been sent yet; only a reminder that went out "
                    "can be snoozed.",
                    field="task_id",
                )
            fire_at = now + timedelta(minutes=minutes)
            jobs = self._arm(
                row, row.spec, reminders.Plan(row.remind_at, ReminderStatus.scheduled, fire_at), now
            )
            self._emit_reminder_armed(session, task, row)
            session.flush()
            public = _reminder_public(row)
        self._apply_jobs(jobs)
        return public

    # ---- wake-ups and the sweeper ---------------------------------------------

    def initial_state(self, series: Series) -> SeriesState:
        return SeriesState(
            **_schedule_of(series),
            series_id=str(series.id),
            user_id=series.user_id,
            current_task_id=str(series.current_task_id),
            paused=series.status == SeriesStatus.paused,
            grace_seconds=self.settings.series_grace_seconds,
            reconcile_seconds=self.settings.series_reconcile_seconds,
            wait_shape=SENTINEL_FREE_WAITS,
        )

    def _start_workflow(self, series: Series) -> bool:
        try:
            self.workflows.start_series(self.initial_state(series))
        except Exception:
            log.warning(
                "starting the workflow of series %s failed; the sweeper retries", series.id, exc_info=True
            )
            return False
        self.started.add(series.id, self.clock())
        return True

    def record_started(self) -> int:
        """Record the workflows started since the last call (the background
        runner calls this a few times a second); returns how many."""
        batch = self.started.take()
        if not batch:
            return 0
        try:
            with session_scope() as session:
                session.connection().execute(
                    _RECORD_STARTED,
                    [{"series_id": series_id, "started_at": at} for series_id, at in batch.items()],
                )
        except Exception:
            self.started.give_back(batch)
            raise
        return len(batch)

    def _notify(self, series_id: uuid.UUID, event: str, data: dict[str, Any] | None = None) -> None:
        try:
            self.workflows.notify(str(series_id), event, data)
        except Exception:
            log.warning(
                "raising %s on series %s failed; reconciliation catches up", event, series_id, exc_info=True
            )

    def sweep(self, *, older_than: timedelta = timedelta(seconds=10), batch: int = 100) -> dict[str, int]:
        """Repair what a crash between a commit and its Dapr call left
        behind: series whose workflow never started, completed, skipped or
        deleted occurrences whose series did not move on, live series whose
        workflow instance ended (failed, terminated, purged), reminders whose
        job Dapr never confirmed, and reminders still unsent well after their
        time (job lost, every callback retry failed, or a claim abandoned by a
        crash). Safe on several replicas (rows are claimed with SKIP LOCKED)."""
        self.record_started()
        reminders_armed, reminders_rescued = self._sweep_reminders(older_than, batch)
        now = self.clock()
        cutoff = now - older_than
        with session_scope() as session:
            unstarted = list(
                session.exec(
                    select(Series)
                    .where(
                        col(Series.workflow_started_at).is_(None),
                        col(Series.status).in_(_LIVE),
                        col(Series.created_at) < cutoff,
                    )
                    .order_by(col(Series.created_at))
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            )
            stalled = self._stalled_series(session, cutoff, batch)
            checked = self._series_to_check(session, cutoff, self.settings.sweep_workflow_checks)
            # Checked now, whatever the answer: the next sweep looks at others first.
            for series in (*stalled, *checked):
                series.workflow_checked_at = now
        for series in unstarted:
            self._start_workflow(series)
        restarted = nudged = 0
        for series in stalled:
            if self._restart_if_ended(series):
                restarted += 1
            else:
                self._notify(series.id, TASK_COMPLETED)
                nudged += 1
        restarted += sum(self._restart_if_ended(series) for series in checked)
        return {
            "started": len(unstarted),
            "nudged": nudged,
            "restarted": restarted,
            "reminders_armed": reminders_armed,
            "reminders_rescued": reminders_rescued,
        }

    @staticmethod
    def _stalled_series(session: Session, cutoff: datetime, batch: int) -> list[Series]:
        """Active series whose current occurrence was completed, skipped or
        deleted before `cutoff` and that did not move on: a lost wake-up, or a
        workflow that no longer runs. Least recently checked first, so no row
        that cannot be repaired keeps the others waiting."""
        return list(
            session.exec(
                select(Series)
                .outerjoin(Task, col(Task.id) == col(Series.current_task_id))
                .where(
                    col(Series.status) == SeriesStatus.active,
                    or_(
                        col(Task.id).is_(None),
                        col(Task.status).in_([TaskStatus.completed, TaskStatus.skipped]),
                    ),
                    func.coalesce(col(Task.updated_at), col(Series.updated_at)) < cutoff,
                )
                .order_by(col(Series.workflow_checked_at).asc().nulls_first(), col(Series.id))
                .limit(batch)
                .with_for_update(of=Series, skip_locked=True)
            )
        )

    @staticmethod
    def _series_to_check(session: Session, cutoff: datetime, batch: int) -> list[Series]:
        """Started series waiting on a pending occurrence (or paused), whose
        workflow was checked longest ago: in turn every one is looked at, so an
        instance that failed or was terminated is found before anyone completes
        the occurrence. (Stalled series are `_stalled_series`' to look at.)"""
        if batch <= 0:
            return []
        return list(
            session.exec(
                select(Series)
                .join(Task, col(Task.id) == col(Series.current_task_id))
                .where(
                    or_(col(Series.status) == SeriesStatus.paused, col(Task.status) == TaskStatus.pending),
                    col(Series.status).in_(_LIVE),
                    col(Series.workflow_started_at).is_not(None),
                    col(Series.created_at) < cutoff,
                )
                .order_by(col(Series.workflow_checked_at).asc().nulls_first(), col(Series.id))
                .limit(batch)
                .with_for_update(of=Series, skip_locked=True)
            )
        )

    def _restart_if_ended(self, series: Series) -> bool:
        """Start the workflow of a live series again when its instance has
        ended or is gone. Idempotent: the instance id is the series', the
        new instance starts from the database's state (its current occurrence,
        which it does not create again), and a running one is left alone."""
        try:
            status = self.workflows.runtime_status(instance_id(series.id))
        except Exception:
            log.warning("workflow state of series %s unavailable", series.id, exc_info=True)
            return False
        if status is not None and status not in ENDED_STATUSES:
            return False
        log.warning(
            "series %s is live but its workflow is %s: starting it again", series.id, status or "gone"
        )
        return self._start_workflow(series)

    def _sweep_reminders(self, older_than: timedelta, batch: int) -> tuple[int, int]:
        now = self.clock()
        overdue = now - timedelta(seconds=self.settings.reminder_overdue_seconds)
        with session_scope() as session:
            unarmed = list(
                session.exec(
                    select(Reminder)
                    .where(
                        col(Reminder.status) == ReminderStatus.scheduled,
                        col(Reminder.job_scheduled_at).is_(None),
                        col(Reminder.updated_at) < now - older_than,
                    )
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            )
            # Re-armed at most once per overdue period: job_scheduled_at moves on each time.
            stuck = list(
                session.exec(
                    select(Reminder)
                    .where(
                        or_(
                            and_(
                                col(Reminder.status) == ReminderStatus.scheduled,
                                col(Reminder.scheduled_for) < overdue,
                            ),
                            and_(
                                col(Reminder.status) == ReminderStatus.sending,
                                col(Reminder.lease_until) < now,
                            ),
                        ),
                        col(Reminder.job_scheduled_at) < overdue,
                    )
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            )
        armed = self._arm_now([self._rearm_job(row) for row in unarmed])
        rescued = self._arm_now([self._rearm_job(row) for row in stuck])
        return armed, rescued


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
        failure_details=(
            WorkflowFailurePublic(error_type=failure.error_type, message=failure.message)
            if (failure := info.failure_details)
            else None
        ),
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
    from todos.dapr_gateway import DaprJobGateway, DaprWorkflowGateway, bound_sidecar_calls
    from todos.settings import get_settings

    settings = get_settings()
    bound_sidecar_calls(settings)
    return TaskService(DaprWorkflowGateway(), settings, jobs=DaprJobGateway(settings))
