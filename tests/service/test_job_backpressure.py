"""A change that arms reminders while the sidecar hangs returns at once; the
jobs are armed when the sidecar answers, or by the sweeper."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from api.app import build_services
from api.deps import Services
from tests.service.conftest import Clock, FakeWorkflows
from todos.core.settings import Settings
from todos.core.users import User
from todos.reminders.mailer import Mailer
from todos.reminders.models import Reminder, ReminderSpec
from todos.tasks.models import TaskCreate

pytestmark = [pytest.mark.service, pytest.mark.timeout(120)]


class HangingJobs:
    """A Jobs API that does not answer until `release` (a scheduler restart)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.armed: set[str] = set()

    def schedule(self, name: str, due_at: datetime, data: bytes) -> None:
        if not self.release.wait(30):
            raise TimeoutError("deadline exceeded")
        self.armed.add(name)

    def delete(self, name: str) -> None:
        self.release.wait(30)


def ten_reminders(clock: Clock) -> TaskCreate:
    return TaskCreate(
        title="Pack for the trip",
        due_at=clock.now + timedelta(days=2),
        reminders=[ReminderSpec(before=timedelta(hours=n + 1)) for n in range(10)],
    )


def confirmed(services: Services, task_id: object) -> int:
    with services.database.session() as session:
        rows = session.exec(select(Reminder).where(Reminder.task_id == task_id))
        return sum(row.job_scheduled_at is not None for row in rows)


def test_a_create_with_ten_reminders_does_not_wait_for_a_hanging_sidecar(
    settings: Settings, clock: Clock, user: User
) -> None:
    jobs = HangingJobs()
    services = build_services(settings, FakeWorkflows(), jobs, Mailer(settings), clock=clock)
    task = services.tasks.create_task(user, ten_reminders(clock))  # returns: the calls are queued
    assert jobs.armed == set() and confirmed(services, task.id) == 0
    jobs.release.set()
    services.job_calls.close(timeout=30)
    assert len(jobs.armed) == 10 and confirmed(services, task.id) == 10
    services.close()


def test_calls_the_lanes_could_not_take_are_made_by_the_sweeper(
    settings: Settings, clock: Clock, user: User
) -> None:
    jobs = HangingJobs()
    narrow = settings.model_copy(update={"job_call_lanes": 1, "job_call_queue": 1})
    services = build_services(narrow, FakeWorkflows(), jobs, Mailer(narrow), clock=clock)
    task = services.tasks.create_task(user, ten_reminders(clock))
    jobs.release.set()
    services.job_calls.close(timeout=30)
    assert confirmed(services, task.id) < 10
    clock.advance(seconds=30)
    services.sweeper.sweep()
    assert confirmed(services, task.id) == 10
    services.close()
