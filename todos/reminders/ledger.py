"""The reminder ledger: each reminder row's state machine and every
transition of it, in the transaction of the change that causes it.

Each reminder row moves scheduled -> sending -> sent | failed, or to
cancelled / skipped; every transition happens in exactly one method below
(`arm`, `claim`, `mark_sent`, `mark_failed`, `cancel`).

Delivery is at-least-once across crashes and exactly-once otherwise: a
callback claims the row (scheduled -> sending, with a lease) in one
transaction before it talks to SMTP, so a second firing of the job finds it
claimed or sent and does nothing. If the app dies after the SMTP server
accepted the email but before "sent" is committed, the lease runs out and a
later firing sends it again (same Message-ID): a rare duplicate rather than a
reminder silently lost.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, update
from sqlmodel import Session, col, select

from todos.core.db import Database
from todos.core.errors import Conflict, Unavailable
from todos.core.metrics import REMINDER_LATENESS, REMINDERS_FAILED, REMINDERS_SENT
from todos.core.users import User, owned
from todos.effects import Service
from todos.events import schema as events
from todos.events.emit import ReminderRef
from todos.reminders import rules
from todos.reminders.jobs import DeleteJob, JobAction, JobCalls, ScheduleJob
from todos.reminders.models import Reminder, ReminderPublic, ReminderStatus, reminder_public
from todos.series.models import Series
from todos.tasks.models import Task, TaskStatus

log = logging.getLogger(__name__)

# Bulk updates of reminder rows that are not loaded in the session: skip
# SQLAlchemy's matching of the criteria against loaded objects (measurable
# CPU when many reminders fire at once).
_UNSYNCED = {"synchronize_session": False}


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
    email: rules.ReminderEmail


@dataclass(frozen=True)
class NotYet:
    """The job fired before the reminder's time (clocks differ): wait this long."""

    seconds: float


def record_armed(database: Database, clock: Callable[[], datetime], jobs: list[ScheduleJob]) -> None:
    """Schedules Dapr confirmed (job_scheduled_at), unless re-armed since."""
    now = clock()
    with database.session() as session:
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


@dataclass(frozen=True)
class ReminderLedger(Service):
    """Every transition of a reminder row (see the module's docstring)."""

    @property
    def job_calls(self) -> JobCalls:
        return self.uow.job_calls

    def sync(
        self, session: Session, task: Task, now: datetime, *, new: bool = False, retry_failed: bool = False
    ) -> ReminderSync:
        """Make the task's reminder rows match its `reminders` and due time.
        A row whose spec and time are unchanged is left alone (a sent
        reminder stays sent); any other is re-armed for its new time. A task
        `new` in this transaction has no rows to read. `retry_failed`: the
        task just got an address, so reminders that failed for want of one
        are armed again."""
        rows: dict[int, Reminder] = {}
        if not new:
            locked = session.exec(select(Reminder).where(Reminder.task_id == task.id).with_for_update())
            rows = {row.n: row for row in locked}
        sync = ReminderSync(jobs=[], rows=[], armed=[])
        for n, spec in enumerate(task.reminders):
            plan = rules.plan(spec, task.due_at, now, task.notify_email)
            row = rows.pop(n, None)
            # A reminder that failed for want of an address goes out once the task has one.
            found_an_address = (
                row is not None and row.status == ReminderStatus.failed and plan.status != row.status
            )
            # A pending task's cancelled row was cancelled by a completion since undone (reopen).
            unchanged = (
                row is not None
                and row.status != ReminderStatus.cancelled
                and row.spec == spec
                and row.remind_at == plan.remind_at
                and not found_an_address
            )
            if row is None:
                row = Reminder(task_id=task.id, n=n, spec=spec, generation=0, created_at=now)
                session.add(row)
            sync.rows.append(row)
            if unchanged:
                continue
            sync.jobs += self.arm(row, spec, plan, now)
            sync.armed.append(row)
        for row in rows.values():
            if row.status == ReminderStatus.scheduled:
                sync.jobs.append(DeleteJob(rules.job_name(task.id, row.n)))
            session.delete(row)
        return sync

    @staticmethod
    def arm(row: Reminder, spec: dict[str, Any], plan: rules.Plan, now: datetime) -> list[JobAction]:
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
        data = rules.JobData(row.task_id, row.n, row.generation)
        if plan.fire_at is not None:
            return [ScheduleJob(row.id, plan.fire_at, data)]
        return [DeleteJob(rules.job_name(row.task_id, row.n))] if had_job else []

    def emit_armed(self, session: Session, task: Task, sync: ReminderSync) -> None:
        """The reminder events of a sync, after the event of the change that
        caused it: a consumer learns of a task before its reminders."""
        for row in sync.armed:
            self.emit_reminder_armed(session, task, row)

    def emit_reminder_armed(self, session: Session, task: Task, row: Reminder) -> None:
        """`reminder.scheduled` for a (re)armed reminder; `reminder.failed` for
        one that cannot go out (no address to send it to)."""
        event_type: events.ReminderEventType
        if row.status == ReminderStatus.scheduled:
            event_type, error = events.REMINDER_SCHEDULED, None
        elif row.status == ReminderStatus.failed:
            event_type, error = events.REMINDER_FAILED, row.failure_reason
        else:
            return
        ref = ReminderRef(task.user_id, task.id, task.series_id, row.remind_at, row.spec)
        self.emitter.reminder(session, event_type, ref, error)

    @staticmethod
    def has_gone_out(session: Session, task_id: uuid.UUID) -> bool:
        """Whether a reminder of the task was sent, or is being sent right now."""
        statuses = (ReminderStatus.sent, ReminderStatus.sending)
        found = session.exec(
            select(Reminder.id)
            .where(Reminder.task_id == task_id, col(Reminder.status).in_(statuses))
            .limit(1)
        ).first()
        return found is not None

    @staticmethod
    def cancel(session: Session, task_ids: list[uuid.UUID], now: datetime) -> list[JobAction]:
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
        return [DeleteJob(rules.job_name(task_id, n)) for task_id, n in cancelled]

    def _arm_now(self, jobs: list[JobAction]) -> int:
        """The job calls made concurrently and waited for; how many got through."""
        return self.job_calls.run(jobs, timeout=self.settings.dapr_call_timeout_seconds + 5)

    def schedule_task_reminders(self, task_id: uuid.UUID) -> int:
        """Arm the jobs of a task's reminders that Dapr has not confirmed yet
        (a new occurrence's, from its workflow). Idempotent: a job is
        overwritten, never doubled."""
        with self.database.session() as session:
            rows = self.unarmed(session, task_id)
        return self._arm_now([self._rearm_job(row) for row in rows])

    @staticmethod
    def unarmed(session: Session, task_id: uuid.UUID) -> list[Reminder]:
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
            rules.JobData(row.task_id, row.n, row.generation),
        )

    def claim(self, data: rules.JobData) -> ReminderClaim | NotYet | str:
        """The `sending` transition, for a firing of a reminder's job: a claim
        to send it, NotYet, or why there is nothing to do.

        One conditional UPDATE claims the row when it is due, of this
        generation, of a pending task and not claimed by a live lease (the
        common case, and the one that has to be cheap when many reminders
        fall due together); only when it claims nothing is the row read to
        say why."""
        now = self.clock()
        token = uuid.uuid4()
        with self.database.session() as session:
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
            email=rules.ReminderEmail(
                recipient=recipient,
                title=title,
                description=description,
                due_at=due_at,
                zone=rules.zone_for(series_zone, user_zone, self.settings.reminder_timezone),
                message_id=rules.message_id(data.task_id, data.n, data.generation, self.settings.smtp_from),
            ),
        )

    @staticmethod
    def _why_not_claimed(session: Session, data: rules.JobData, now: datetime) -> NotYet | str:
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
        with self.database.session() as session:
            finished = session.execute(
                update(Reminder)
                .where(
                    col(Reminder.id) == claim.reminder_id,
                    col(Reminder.claim_token) == claim.token,
                    col(Reminder.status) == ReminderStatus.sending,
                    col(Task.id) == col(Reminder.task_id),
                )
                .values(claim_token=None, lease_until=None, updated_at=self.clock(), **values)
                # In ReminderRef's order.
                .returning(
                    col(Task.user_id),
                    col(Reminder.task_id),
                    col(Task.series_id),
                    col(Reminder.remind_at),
                    col(Reminder.spec),
                ),
                execution_options=_UNSYNCED,
            ).first()
            if finished is None:
                log.warning(
                    "reminder %s: the claim ran out or was superseded while sending", claim.reminder_id
                )
                return
            self.emitter.reminder(session, event_type, ReminderRef(*finished), error)

    def mark_sent(self, claim: ReminderClaim, sent_at: datetime, attempts: int) -> None:
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

    def mark_failed(self, claim: ReminderClaim, reason: str, attempts: int, *, permanent: bool) -> None:
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

    def snooze(self, user: User, task_id: uuid.UUID, minutes: int) -> ReminderPublic:
        """Send the task's most recently sent reminder again `minutes` from now."""
        now = self.clock()
        with self.uow.transaction() as tx:
            task = owned(tx.session, Task, user, task_id, lock=True)
            if task.status != TaskStatus.pending:
                raise Conflict(
                    f"The task is {task.status}; only a pending task's reminder can be snoozed.",
                    field="task_id",
                )
            row = tx.session.exec(
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
            tx.effects.jobs += self.arm(
                row, row.spec, rules.Plan(row.remind_at, ReminderStatus.scheduled, fire_at), now
            )
            self.emit_reminder_armed(tx.session, task, row)
            tx.session.flush()
            return reminder_public(row)

    def sweep(self, older_than: timedelta, batch: int) -> tuple[int, int]:
        """Arm the jobs Dapr never confirmed, and again those of reminders still
        unsent well after their time; returns (armed, rescued)."""
        now = self.clock()
        overdue = now - timedelta(seconds=self.settings.reminder_overdue_seconds)
        with self.database.session() as session:
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
