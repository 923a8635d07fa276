"""The sweeper: repairs what a crash between a commit and its Dapr call left
undone, and what the workflow engine lost. Run every sweep interval by the
api role's upkeep thread; safe on several replicas (rows are claimed with
SKIP LOCKED)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from todos.dapr import ENDED_STATUSES, WorkflowGateway
from todos.effects import Notice, Service
from todos.reminders.ledger import ReminderLedger
from todos.series.contract import TASK_COMPLETED, instance_id
from todos.series.models import LIVE_STATUSES, Series, SeriesStatus
from todos.series.starts import WorkflowStarts
from todos.tasks.models import Task, TaskStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sweeper(Service):
    starts: WorkflowStarts
    ledger: ReminderLedger
    workflows: WorkflowGateway

    def sweep(self, *, older_than: timedelta = timedelta(seconds=10), batch: int = 100) -> dict[str, int]:
        """Repair what a crash between a commit and its Dapr call left
        behind: series whose workflow never started, completed, skipped or
        deleted occurrences whose series did not move on, live series whose
        workflow instance ended (failed, terminated, purged), reminders whose
        job Dapr never confirmed, and reminders still unsent well after their
        time (job lost, every callback retry failed, or a claim abandoned by a
        crash). Safe on several replicas (rows are claimed with SKIP LOCKED)."""
        self.starts.record_started()
        reminders_armed, reminders_rescued = self.ledger.sweep(older_than, batch)
        now = self.clock()
        cutoff = now - older_than
        with self.uow.database.session() as session:
            unstarted = list(
                session.exec(
                    select(Series)
                    .where(
                        col(Series.workflow_started_at).is_(None),
                        col(Series.status).in_(LIVE_STATUSES),
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
            self.starts.start(series)
        restarted = nudged = 0
        for series in stalled:
            if self._restart_if_ended(series):
                restarted += 1
            else:
                self.uow.notify(Notice(series.id, TASK_COMPLETED))
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
                    col(Series.status).in_(LIVE_STATUSES),
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
        return self.starts.start(series)
