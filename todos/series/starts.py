"""Starting series workflows: the first generation's input from the series
row, the start call (idempotent: the instance id is the series'), and the
batched record of which series' workflows daprd accepted."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import bindparam, update
from sqlmodel import col

from todos.core.db import Database
from todos.core.settings import Settings
from todos.dapr import WorkflowGateway
from todos.series.contract import SENTINEL_FREE_WAITS, SeriesSchedule, SeriesState
from todos.series.models import Series, SeriesStatus

log = logging.getLogger(__name__)


def iso(value: datetime) -> str:
    """An instant as the workflow's state and progress carry it."""
    return value.astimezone(UTC).isoformat()


def schedule_of(series: Series) -> SeriesSchedule:
    """Where a series stands in its rule, as its row says."""
    return SeriesSchedule(
        rule=series.rule,
        timezone=series.timezone,
        basis=str(series.basis),
        dtstart=iso(series.dtstart),
        anchor=iso(series.anchor_at),
        occurrence_index=series.occurrence_index,
        rule_index=series.rule_index,
        exdates=[iso(moment) for moment in series.exdates],
        rdates=[iso(moment) for moment in series.rdates],
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


@dataclass(frozen=True)
class WorkflowStarts:
    database: Database
    workflows: WorkflowGateway
    settings: Settings
    clock: Callable[[], datetime]
    started: StartedWorkflows = field(default_factory=StartedWorkflows, init=False)

    def initial_state(self, series: Series) -> SeriesState:
        return SeriesState(
            **schedule_of(series).schedule(),
            series_id=str(series.id),
            user_id=series.user_id,
            current_task_id=str(series.current_task_id),
            paused=series.status == SeriesStatus.paused,
            grace_seconds=self.settings.series_grace_seconds,
            reconcile_seconds=self.settings.series_reconcile_seconds,
            wait_shape=SENTINEL_FREE_WAITS,
            step_shape=self.settings.series_step_shape,
        )

    def start(self, series: Series) -> bool:
        """Start the series' workflow (a no-op for a running one); False if daprd did not take it."""
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
            with self.database.session() as session:
                session.connection().execute(
                    _RECORD_STARTED,
                    [{"series_id": series_id, "started_at": at} for series_id, at in batch.items()],
                )
        except Exception:
            self.started.give_back(batch)
            raise
        return len(batch)
