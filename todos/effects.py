"""After-commit effects: what a change asks of Dapr (arm or delete reminder
jobs, start a series' workflow, wake one with an event) is collected while
its transaction runs and applied only once it has committed.

So a rolled-back change asks Dapr for nothing, and a committed one whose
call fails (sidecar down, app killed between commit and call) loses nothing
either: the database says what should be, the workflow reconciles with it,
and the sweeper (todos.sweeper) repeats what did not get through.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from todos.core.db import Database
from todos.core.settings import Settings
from todos.dapr import WorkflowGateway
from todos.events.emit import Emitter
from todos.reminders.jobs import JobAction, JobCalls
from todos.series.models import Series
from todos.series.starts import WorkflowStarts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notice:
    """An event to raise on a series' workflow."""

    series_id: uuid.UUID
    event: str
    data: dict[str, Any] | None = None


@dataclass
class Effects:
    jobs: list[JobAction] = field(default_factory=list)
    starts: list[Series] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)

    def notify(self, series_id: uuid.UUID, event: str, data: dict[str, Any] | None = None) -> None:
        self.notices.append(Notice(series_id, event, data))


@dataclass(frozen=True)
class Transaction:
    session: Session
    effects: Effects


@dataclass(frozen=True)
class UnitOfWork:
    """A transaction and the Dapr calls it asked for, made after its commit."""

    database: Database
    job_calls: JobCalls
    starts: WorkflowStarts
    workflows: WorkflowGateway

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        effects = Effects()
        with self.database.session() as session:
            yield Transaction(session, effects)
        self.apply(effects)

    def apply(self, effects: Effects) -> None:
        # Jobs go out in the background (todos.reminders.jobs): nobody waits for the sidecar.
        self.job_calls.submit(effects.jobs)
        for series in effects.starts:
            self.starts.start(series)
        for notice in effects.notices:
            self.notify(notice)

    def notify(self, notice: Notice) -> None:
        try:
            self.workflows.notify(str(notice.series_id), notice.event, notice.data)
        except Exception:
            log.warning(
                "raising %s on series %s failed; reconciliation catches up",
                notice.event,
                notice.series_id,
                exc_info=True,
            )


@dataclass(frozen=True, kw_only=True)
class Service:
    """What every service is built on: transactions and their after-commit
    effects, the events it writes, the settings and the clock (the
    composition root, api/app.py, passes the same ones to all)."""

    uow: UnitOfWork
    emitter: Emitter
    settings: Settings
    clock: Callable[[], datetime]

    @property
    def database(self) -> Database:
        return self.uow.database
