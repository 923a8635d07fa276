"""The rules of a task's life: create (a recurring one starts its series),
read and list (cursor paging), update (a new rule applies from the current
occurrence), complete, reopen and delete. Each operation is one transaction; what it
asks of Dapr goes out after the commit (todos.effects)."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from todos.core import logs
from todos.core.errors import Conflict, InvalidInput
from todos.core.metrics import TASKS_COMPLETED, TASKS_CREATED, TASKS_REOPENED
from todos.core.users import User, not_found, owned
from todos.effects import Service, Transaction
from todos.events import schema as events
from todos.profiles.service import Personal, personal
from todos.reminders.ledger import ReminderLedger
from todos.reminders.models import ReminderSpec
from todos.series.changes import change_rule, check_rule_change, new_series, parse_recurrence, template
from todos.series.contract import OCCURRENCE_SKIPPED, SERIES_CHANGED, SERIES_STOPPED, TASK_COMPLETED
from todos.series.models import Series
from todos.series.service import DeleteScope, SeriesService
from todos.series.starts import iso
from todos.tasks.models import Task, TaskCreate, TaskPage, TaskPublic, TaskStatus, TaskUpdate
from todos.tasks.views import reminder_rows, snapshot, task_json, task_public

StatusFilter = Literal["pending", "completed", "all"]


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
class TaskService(Service):
    series: SeriesService
    ledger: ReminderLedger

    @staticmethod
    def _task(session: Session, user: User, task_id: uuid.UUID, *, lock: bool = False) -> Task:
        task = owned(session, Task, user, task_id, lock=lock)
        logs.annotate(task_id=task.id)
        return task

    @staticmethod
    def _locked_task_and_series(
        session: Session, user: User, task_id: uuid.UUID
    ) -> tuple[Task, Series | None]:
        """The user's task, locked, and its series (not locked) in one round trip."""
        found = session.exec(
            select(Task, Series)
            .outerjoin(Series, col(Series.id) == col(Task.series_id))
            .where(Task.id == task_id, Task.user_id == user.id)
            .with_for_update(of=Task)
        ).first()
        if found is None:
            raise not_found(Task, task_id)
        logs.annotate(task_id=task_id)
        return found

    # ---- reads ----------------------------------------------------------------

    def get_task(self, user: User, task_id: uuid.UUID) -> TaskPublic:
        with self.uow.database.session() as session:
            return task_public(session, self._task(session, user, task_id))

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
        with self.uow.database.session() as session:
            rows = list(session.exec(statement))
            page = rows[: query.limit]
            series_ids = {t.series_id for t in page if t.series_id is not None}
            series = (
                {s.id: s for s in session.exec(select(Series).where(col(Series.id).in_(series_ids)))}
                if series_ids
                else {}
            )
            reminders = reminder_rows(session, [t.id for t in page])
            items = [
                task_public(
                    session, t, series.get(t.series_id) if t.series_id else None, reminders.get(t.id, [])
                )
                for t in page
            ]
        next_cursor = _encode_cursor(page[-1]) if len(rows) > query.limit else None
        return TaskPage(items=items, next_cursor=next_cursor)

    # ---- changes --------------------------------------------------------------

    def create_task(self, user: User, data: TaskCreate) -> TaskPublic:
        now = self.clock()
        with self.uow.transaction() as tx:
            me = personal(tx.session, user)
            task, series = self._new_task(user, me, data, now)
            if series is not None:
                tx.session.add(series)
                tx.session.flush()
                tx.effects.starts.append(series)
            tx.session.add(task)
            tx.session.flush()
            sync = self.ledger.sync(tx.session, task, now, new=True)
            tx.effects.jobs += sync.jobs
            public = task_public(tx.session, task, series, sync.rows)
            self.emitter.task(tx.session, events.TASK_CREATED, task, {"task": task_json(public)})
            self.ledger.emit_armed(tx.session, task, sync)
        logs.annotate(task_id=task.id)
        TASKS_CREATED.labels("one_off" if series is None else "recurring").inc()
        return public

    def _new_task(
        self, user: User, me: Personal, data: TaskCreate, now: datetime
    ) -> tuple[Task, Series | None]:
        """The task the body asks for, and its series if it recurs. Without
        `reminders`, a task with a due date gets the profile's defaults."""
        reminders = (
            _reminders_json(data.reminders)
            if "reminders" in data.model_fields_set or data.due_at is None
            else me.default_reminders
        )
        task = Task(
            **data.model_dump(include={"title", "description", "priority", "tags", "due_at"}),
            reminders=reminders,
            checklist=[item.model_dump() for item in data.checklist],
            user_id=user.id,
            notify_email=me.email,
            notify_timezone=me.timezone,
            created_at=now,
            updated_at=now,
        )
        _check_reminder_times(task, "reminders")
        if data.recurrence is None:
            return task, None
        if data.due_at is None:
            raise InvalidInput(
                "due_at: a recurring task needs its first due date-time (RFC 3339, e.g. "
                "2026-12-01T09:00:00-05:00); the rule repeats from there.",
                field="due_at",
            )
        rec = parse_recurrence(
            data.recurrence,
            data.due_at,
            "recurrence.",
            self.settings.min_recurrence_interval,
            default_timezone=me.series_timezone,
        )
        return task, new_series(user, task, rec, now)

    def update_task(self, user: User, task_id: uuid.UUID, data: TaskUpdate) -> TaskPublic:
        changes = data.model_dump(exclude_unset=True)
        if not changes:
            raise InvalidInput("The body changes nothing: give at least one field to update.", field="body")
        for required in ("title", "priority", "tags", "reminders", "checklist"):
            if required in changes and changes[required] is None:
                raise InvalidInput(
                    f"{required}: cannot be null; omit it to leave it unchanged.", field=required
                )
        now = self.clock()
        with self.uow.transaction() as tx:
            session = tx.session
            task = self._task(session, user, task_id, lock=True)
            series = session.get(Series, task.series_id, with_for_update=True) if task.series_id else None
            before = snapshot(session, task, series)
            for name in ("title", "description", "priority", "tags", "due_at"):
                if name in data.model_fields_set:
                    setattr(task, name, getattr(data, name))
            if data.reminders is not None:
                task.reminders = _reminders_json(data.reminders)
            if data.checklist is not None:
                task.checklist = [item.model_dump() for item in data.checklist]
            rule_changed = False
            if "recurrence" in data.model_fields_set:
                rule_changed = series is not None
                series = self._change_recurrence(tx, user, task, series, data, now)
            if series is not None:
                series.template = template(task)
                series.updated_at = now
                # The anchor stays the occurrence's slot in the rule: a moved occurrence
                # is followed by the rule's next slot after both (recurrence.next_occurrence).
                if rule_changed or (task.id == series.current_task_id and "due_at" in changes):
                    tx.effects.notify(series.id, SERIES_CHANGED)
            _check_reminder_times(task, "reminders" if data.reminders is not None else None)
            address = personal(session, user).email if task.notify_email is None else None
            found_an_address = address is not None
            if found_an_address:
                task.notify_email = address
            task.updated_at = now
            session.flush()
            # Not pending: the rows stay as they are.
            sync = (
                self.ledger.sync(session, task, now, retry_failed=found_an_address)
                if task.status == TaskStatus.pending
                else None
            )
            public = task_public(session, task, series, sync.rows if sync else None)
            self.emitter.change(session, events.TASK_UPDATED, task, before, task_json(public))
            if sync is not None:
                tx.effects.jobs += sync.jobs
                self.ledger.emit_armed(session, task, sync)
        return public

    def _change_recurrence(
        self, tx: Transaction, user: User, task: Task, series: Series | None, data: TaskUpdate, now: datetime
    ) -> Series:
        """A rule on a one-off task starts a series; on a recurring one it replaces the rule."""
        if data.recurrence is None:
            raise InvalidInput(
                "recurrence: to end a series use DELETE /v1/tasks/{id}?scope=series or "
                "POST /v1/series/{id}/stop.",
                field="recurrence",
            )
        if task.due_at is None:
            raise InvalidInput("due_at: a recurring task needs a due date-time.", field="due_at")
        if series is not None:
            check_rule_change(series, task)
        rec = parse_recurrence(
            data.recurrence,
            task.due_at,
            "recurrence.",
            self.settings.min_recurrence_interval,
            replacing=series,
        )
        if series is None:
            if task.status != TaskStatus.pending:
                raise Conflict("Only a pending task can become recurring.", field="recurrence")
            series = new_series(user, task, rec, now)
            tx.session.add(series)
            tx.effects.starts.append(series)
            return series
        change_rule(series, task, rec, now)
        return series

    def complete_task(self, user: User, task_id: uuid.UUID) -> TaskPublic:
        """Idempotent: completing a completed task returns it unchanged."""
        now = self.clock()
        with self.uow.transaction() as tx:
            session = tx.session
            task, series = self._locked_task_and_series(session, user, task_id)
            if task.status == TaskStatus.skipped:
                raise Conflict("This occurrence was skipped; it cannot be completed.", field="task_id")
            newly_completed = task.status == TaskStatus.pending
            # A pending task's rows mirror its `reminders` (ReminderLedger.sync): none to read.
            has_rows = bool(task.reminders) or not newly_completed
            rows = reminder_rows(session, [task.id]).get(task.id, []) if has_rows else []
            before = task_json(task_public(session, task, series, rows))
            if newly_completed:
                task.status = TaskStatus.completed
                task.completed_at = now
                task.updated_at = now
                # The task row is locked: no reminder row can appear meanwhile.
                if rows:
                    tx.effects.jobs += self.ledger.cancel(session, [task.id], now)
                    rows = reminder_rows(session, [task.id], refresh=True).get(task.id, [])
            public = task_public(session, task, series, rows)
            if newly_completed:
                self.emitter.change(session, events.TASK_COMPLETED, task, before, task_json(public))
            if task.series_id is not None:
                # Raised again on a repeated completion too: harmless (the workflow
                # reconciles), and it recovers a wake-up lost the first time.
                # With when it was completed, a step-shape-2 workflow needs no read to step.
                data = {
                    "task_id": str(task.id),
                    "occurrence_index": task.occurrence_index,
                    "completed_at": iso(task.completed_at) if task.completed_at else None,
                }
                tx.effects.notify(task.series_id, TASK_COMPLETED, data)
        if newly_completed:
            TASKS_COMPLETED.inc()
        return public

    def reopen_task(self, user: User, task_id: uuid.UUID) -> TaskPublic:
        """Undo a completion (or a skip): the task is pending again and its
        reminders still ahead are armed again; an occurrence of a series is
        current again (SeriesService.reopen says when it may be). Reopening a
        pending task changes nothing."""
        now = self.clock()
        with self.uow.transaction() as tx:
            session = tx.session
            found = session.execute(
                select(Task.series_id).where(Task.id == task_id, Task.user_id == user.id)
            ).first()
            if found is None:
                raise not_found(Task, task_id)
            # The series before its occurrence, in the order every series change locks them.
            series = session.get(Series, found.series_id, with_for_update=True) if found.series_id else None
            task = self._task(session, user, task_id, lock=True)
            if task.status == TaskStatus.pending or task.series_id != found.series_id:
                return task_public(session, task, series)
            if series is not None:
                self.series.reopen(tx, series, task, now)
            before = snapshot(session, task, series)
            task.status = TaskStatus.pending
            task.completed_at = None
            task.updated_at = now
            session.flush()
            sync = self.ledger.sync(session, task, now)
            tx.effects.jobs += sync.jobs
            public = task_public(session, task, series, sync.rows)
            self.emitter.change(session, events.TASK_UPDATED, task, before, task_json(public))
            self.ledger.emit_armed(session, task, sync)
        TASKS_REOPENED.inc()
        return public

    def delete_task(self, user: User, task_id: uuid.UUID, scope: DeleteScope = "occurrence") -> None:
        now = self.clock()
        with self.uow.transaction() as tx:
            session = tx.session
            task = self._task(session, user, task_id, lock=True)
            series = session.get(Series, task.series_id, with_for_update=True) if task.series_id else None
            deleted: set[uuid.UUID] = set()
            tx.effects.jobs += self.ledger.cancel(session, [task.id], now)
            if series is not None and scope == "series":
                deleted = self.series.stop(tx, series, now)
                tx.effects.notify(series.id, SERIES_STOPPED)
            elif series is not None and task.id == series.current_task_id:
                # Deleting the current occurrence moves the series on, like a skip.
                tx.effects.notify(series.id, OCCURRENCE_SKIPPED)
            if task.id not in deleted:
                self.series.emit_deleted(session, task, series, scope)
            # Its reminder rows go with it (ON DELETE CASCADE).
            session.delete(task)


def _encode_cursor(task: Task) -> str:
    raw = json.dumps([task.created_at.astimezone(UTC).isoformat(), str(task.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, task_id = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(created, str) or not isinstance(task_id, str):
            raise TypeError("a cursor holds a creation time and a task id, both strings")
        # OverflowError: a time whose offset takes it outside years 1-9999 in UTC.
        return datetime.fromisoformat(created).astimezone(UTC), uuid.UUID(task_id)
    except (ValueError, TypeError, OverflowError, binascii.Error) as error:
        raise InvalidInput(
            "cursor: not a cursor this API returned; pass `next_cursor` from the previous page unchanged.",
            field="cursor",
        ) from error


def _reminders_json(specs: list[ReminderSpec]) -> list[dict[str, Any]]:
    return [spec.to_json() for spec in specs]


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
