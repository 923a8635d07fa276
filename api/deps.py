"""What the routes and tools reach in the composition root (api/app.py): the
process's services, in one container on `app.state.services`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from todos.calendar.service import CalendarService
from todos.core.db import Database
from todos.core.settings import Settings
from todos.events.history import TaskHistories
from todos.profiles.service import ProfileService
from todos.reminders.delivery import ReminderDelivery
from todos.reminders.jobs import JobCalls
from todos.reminders.ledger import ReminderLedger
from todos.series.service import SeriesService
from todos.series.starts import WorkflowStarts
from todos.series.steps import SeriesSteps
from todos.sweeper import Sweeper
from todos.tasks.service import TaskService


@dataclass(frozen=True)
class Services:
    settings: Settings
    database: Database
    tasks: TaskService
    series: SeriesService
    profiles: ProfileService
    calendar: CalendarService
    steps: SeriesSteps
    reminders: ReminderLedger
    delivery: ReminderDelivery
    starts: WorkflowStarts
    sweeper: Sweeper
    histories: TaskHistories
    job_calls: JobCalls

    def close(self) -> None:
        """After the last request: the job calls still queued, then the connections."""
        self.job_calls.close()
        self.database.dispose()


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _tasks(request: Request) -> TaskService:
    return services_of(request).tasks


def _series(request: Request) -> SeriesService:
    return services_of(request).series


def _profiles(request: Request) -> ProfileService:
    return services_of(request).profiles


def _calendar(request: Request) -> CalendarService:
    return services_of(request).calendar


def _reminders(request: Request) -> ReminderLedger:
    return services_of(request).reminders


def _histories(request: Request) -> TaskHistories:
    # Both roles serve a task's history: the audit app has no Services.
    histories: TaskHistories = request.app.state.histories
    return histories


Tasks = Annotated[TaskService, Depends(_tasks)]
SeriesOps = Annotated[SeriesService, Depends(_series)]
Profiles = Annotated[ProfileService, Depends(_profiles)]
Calendars = Annotated[CalendarService, Depends(_calendar)]
Reminders = Annotated[ReminderLedger, Depends(_reminders)]
Histories = Annotated[TaskHistories, Depends(_histories)]
