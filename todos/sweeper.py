"""The sweeper: repairs what a crash between a commit and its Dapr call left
undone, and what the workflow engine lost. Run every sweep interval by the
api role's upkeep thread; safe on several replicas (rows are claimed with
SKIP LOCKED)."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from todos.dapr import ENDED_STATUSES, WorkflowGateway, WorkflowInfo
from todos.effects import Notice, Service
from todos.reminders.ledger import ReminderLedger
from todos.series.contract import TASK_COMPLETED, instance_id
from todos.series.models import LIVE_STATUSES, Series, SeriesStatus
from todos.series.starts import WorkflowStarts
from todos.tasks.models import Task, TaskStatus

log = logging.getLogger(__name__)

Repair = Literal["nudged", "restarted", "replaced"]
# How long a replacement waits for the engine to end the instance it terminated.
REPLACE_POLLS = 20
REPLACE_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Sweeper(Service):
    starts: WorkflowStarts
    ledger: ReminderLedger
    workflows: WorkflowGateway

    def sweep(self, *, older_than: timedelta = timedelta(seconds=10), batch: int = 100) -> dict[str, int]:
        """Repair what a crash between a commit and its Dapr call left
        behind: series whose workflow never started, completed, skipped or
        deleted occurrences whose series did not move on, live series whose
        workflow instance ended (failed, terminated, purged) or lags the
        database (a step's result lost on its way), reminders whose
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
        lag_cutoff = now - timedelta(seconds=self.settings.sweep_lag_grace_seconds)
        repairs = Counter[Repair]()
        for series in stalled:
            repair = self._repair_workflow(series, lag_cutoff)
            if repair is None:
                self.uow.notify(Notice(series.id, TASK_COMPLETED))
                repair = "nudged"
            repairs[repair] += 1
        repairs.update(
            repair for series in checked if (repair := self._repair_workflow(series, lag_cutoff)) is not None
        )
        return {
            "started": len(unstarted),
            "nudged": repairs["nudged"],
            "restarted": repairs["restarted"],
            "replaced": repairs["replaced"],
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

    def _repair_workflow(self, series: Series, lag_cutoff: datetime) -> Repair | None:
        """Start the workflow of a live series again when its instance has
        ended or is gone ("restarted"), or replace a running one that lags
        the database ("replaced"); None when the instance is where the
        database says (or its state cannot be read). Idempotent: the instance
        id is the series', and the new instance starts from the database's
        state (its current occurrence, which it does not create again)."""
        instance = instance_id(series.id)
        try:
            info = self.workflows.describe(instance)
        except Exception:
            log.warning("workflow state of series %s unavailable", series.id, exc_info=True)
            return None
        if info is None or info.runtime_status in ENDED_STATUSES:
            status = info.runtime_status if info else "gone"
            log.warning("series %s is live but its workflow is %s: starting it again", series.id, status)
            return "restarted" if self.starts.start(series) else None
        at = workflow_occurrence(info)
        # Only a running instance: a suspended one is an operator's to resume.
        lagging = info.runtime_status == "RUNNING" and at is not None and at < series.occurrence_index
        if not lagging or series.updated_at >= lag_cutoff:
            return None
        # The step that committed the series' current occurrence never reached
        # the instance (seen when a scheduler member died with the job that
        # carried the activity's result): no event or timer wakes it again.
        log.warning(
            "the workflow of series %s is still at occurrence %d, the database at %d: replacing it",
            series.id,
            at,
            series.occurrence_index,
        )
        return "replaced" if self._replace(series) else None

    def _replace(self, series: Series) -> bool:
        """Terminate the instance, wait until the engine has ended it, and start it again."""
        instance = instance_id(series.id)
        try:
            self.workflows.terminate(instance)
            for _ in range(REPLACE_POLLS):
                if self.workflows.runtime_status(instance) in (*ENDED_STATUSES, None):
                    return self.starts.start(series)
                time.sleep(REPLACE_POLL_SECONDS)
        except Exception:
            log.warning("replacing the workflow of series %s failed", series.id, exc_info=True)
            return False
        # Terminated later: the next check finds it ended and starts it again.
        log.warning("the workflow of series %s did not end in time; the sweeper starts it later", series.id)
        return False


def workflow_occurrence(info: WorkflowInfo) -> int | None:
    """The occurrence the instance's running generation works on (its custom status)."""
    try:
        index = json.loads(info.serialized_custom_status or "")["occurrence_index"]
    except (ValueError, TypeError, KeyError):
        return None
    return index if isinstance(index, int) else None
