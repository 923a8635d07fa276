"""A person's profile on the real database: what it holds, and what it means
for their tasks: a new series' zone, the reminders a task gets when it asks
for none, and the address every pending reminder goes to."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlmodel import select

from api.deps import Services
from tests.service.conftest import Clock, FakeJobs
from tests.service.support import create, patch
from todos.core.users import User
from todos.profiles.models import ProfileUpdate
from todos.reminders.models import Reminder, ReminderStatus
from todos.reminders.rules import job_name
from todos.series.models import Series
from todos.tasks.models import Task

pytestmark = [pytest.mark.service, pytest.mark.timeout(120)]

PARIS = {"timezone": "Europe/Paris"}


def put(services: Services, user: User, **body: Any) -> Any:
    return services.profiles.put_profile(user, ProfileUpdate.model_validate(body))


def series_zone(services: Services, series_id: uuid.UUID | None) -> str:
    with services.database.session() as session:
        series = session.get(Series, series_id)
        assert series is not None
        return series.timezone


def test_a_profile_is_empty_until_set_and_a_put_replaces_it_whole(services: Services, user: User) -> None:
    empty = services.profiles.get_profile(user)
    assert (empty.timezone, empty.email, empty.default_reminders, empty.updated_at) == (None, None, [], None)

    put(
        services,
        user,
        timezone="europe/paris",
        email="ada@example.com",
        default_reminders=[{"before": "PT15M"}],
    )
    replaced = put(services, user, email="ada@example.org")

    shown = services.profiles.get_profile(user)
    assert shown == replaced
    assert (shown.timezone, shown.email, shown.default_reminders) == (None, "ada@example.org", [])
    # The zone is stored as its canonical name.
    assert put(services, user, **PARIS).timezone == "Europe/Paris"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"email": "not an address"}, "email"),
        ({"email": "ada@localhost"}, "email"),
        ({"default_reminders": [{"at": "2030-01-01T09:00:00Z"}]}, "default_reminders"),
    ],
)
def test_a_profile_the_service_cannot_use_is_refused_naming_the_field(
    body: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        ProfileUpdate.model_validate(body)

    assert refused.value.errors()[0]["loc"][0] == field


def test_a_new_series_without_a_zone_is_in_the_profiles_then_the_tokens_then_utc(
    services: Services, user: User, clock: Clock
) -> None:
    due = (clock.now + timedelta(days=1)).isoformat()
    daily = {"rule": "daily"}
    in_token_zone = User(id=user.id, email=user.email, timezone="America/New_York")
    in_unknown_zone = User(id=user.id, email=user.email, timezone="Mars/Olympus")

    assert series_zone(services, create(services, user, due_at=due, recurrence=daily).series_id) == "UTC"
    assert (
        series_zone(services, create(services, in_unknown_zone, due_at=due, recurrence=daily).series_id)
        == "UTC"
    )
    assert (
        series_zone(services, create(services, in_token_zone, due_at=due, recurrence=daily).series_id)
        == "America/New_York"
    )
    put(services, user, **PARIS)
    from_profile = create(services, in_token_zone, due_at=due, recurrence=daily)
    assert series_zone(services, from_profile.series_id) == "Europe/Paris"
    named = create(services, user, due_at=due, recurrence={**daily, "timezone": "Asia/Tokyo"})
    assert series_zone(services, named.series_id) == "Asia/Tokyo"

    # A new rule without a zone keeps the series' zone.
    patch(services, user, named.id, recurrence={"rule": "weekdays"})
    assert series_zone(services, named.series_id) == "Asia/Tokyo"


def test_a_task_asking_for_no_reminders_with_a_due_date_gets_the_profiles(
    services: Services, user: User, clock: Clock
) -> None:
    put(services, user, default_reminders=[{"before": "PT30M"}])
    due = (clock.now + timedelta(days=1)).isoformat()

    assert [r.before for r in create(services, user, due_at=due).reminders] == [timedelta(minutes=30)]
    assert create(services, user, due_at=due, reminders=[]).reminders == []
    assert create(services, user).reminders == []


def test_the_profiles_address_takes_every_pending_reminder_even_one_that_had_none(
    services: Services, jobs: FakeJobs, user: User, clock: Clock
) -> None:
    no_address = User(id=user.id)
    due = (clock.now + timedelta(days=1)).isoformat()
    unreachable = create(services, no_address, due_at=due, reminders=[{"before": "PT1H"}])
    addressed = create(services, user, due_at=due)
    recurring = create(services, user, due_at=due, recurrence={"rule": "daily"})
    done = create(services, user, due_at=due)
    services.tasks.complete_task(user, done.id)
    with services.database.session() as session:
        row = session.exec(select(Reminder).where(Reminder.task_id == unreachable.id)).one()
        assert row.status == ReminderStatus.failed

    put(services, user, email="ada@example.org")

    services.job_calls.close()
    with services.database.session() as session:
        addresses = {task.id: task.notify_email for task in session.exec(select(Task))}
        row = session.exec(select(Reminder).where(Reminder.task_id == unreachable.id)).one()
        series = session.get(Series, recurring.series_id)
        assert series is not None
        template_address = series.template["notify_email"]
    assert addresses == {
        unreachable.id: "ada@example.org",
        addressed.id: "ada@example.org",
        recurring.id: "ada@example.org",
        done.id: user.email,
    }
    assert template_address == "ada@example.org"
    assert row.status == ReminderStatus.scheduled and job_name(unreachable.id, 0) in jobs.armed
    # A task created from now on goes there too, whatever the token says.
    assert addresses_of(services, create(services, user, due_at=due).id) == "ada@example.org"


def addresses_of(services: Services, task_id: uuid.UUID) -> str | None:
    with services.database.session() as session:
        task = session.get(Task, task_id)
        assert task is not None
        return task.notify_email
