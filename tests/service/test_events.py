"""The event rules (README "Events and the audit trail") on the real database:
each change writes its events to the outbox in its own transaction (read
here as the relay would, in publish order), a change that changes nothing
writes none, a rolled-back one writes none, and every row is a valid
envelope keyed by its user."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from api.deps import Services
from tests.service.conftest import Clock, FakeJobs, FakeWorkflows
from tests.service.support import create, event_types, later, outbox, patch, run_generation
from todos.core.errors import InvalidInput
from todos.core.fields import rfc3339
from todos.core.users import User
from todos.events import schema as events
from todos.events.outbox import OutboxRow
from todos.reminders.ledger import ReminderLedger
from todos.series.contract import CREATE_NEXT_OCCURRENCE
from todos.tasks.models import TaskPublic
from todos.tasks.service import TaskQuery

pytestmark = [pytest.mark.service, pytest.mark.timeout(120)]


def written_since(services: Services, seen: int) -> list[OutboxRow]:
    return outbox(services.database)[seen:]


def task_json(task: TaskPublic) -> dict[str, Any]:
    return task.model_dump(mode="json")


def test_a_create_writes_task_created_then_reminder_scheduled_for_each_reminder(
    services: Services, user: User, clock: Clock
) -> None:
    task = create(
        services, user, due_at=later(clock, days=1), reminders=[{"before": "PT15M"}, {"before": "PT1H"}]
    )
    created, *scheduled = outbox(services.database)
    assert (created.topic, created.body["event_type"]) == (events.TASK_EVENTS, events.TASK_CREATED)
    assert created.body["task_id"] == str(task.id) and created.body["payload"] == {"task": task_json(task)}
    assert [(row.topic, row.body["event_type"]) for row in scheduled] == [
        (events.REMINDERS, events.REMINDER_SCHEDULED)
    ] * 2
    assert [row.body["payload"] for row in scheduled] == [
        {"remind_at": later(clock, days=1, minutes=-15), "reminder": {"before": "PT15M"}},
        {"remind_at": later(clock, days=1, hours=-1), "reminder": {"before": "PT1H"}},
    ]


def test_an_update_writes_task_updated_with_its_field_changes_and_the_same_changes_on_task_updates(
    services: Services, user: User, clock: Clock
) -> None:
    task = create(services, user, due_at=later(clock, days=1), reminders=[{"before": "PT15M"}])
    seen = len(outbox(services.database))
    clock.advance(minutes=1)
    updated = patch(
        services, user, task.id, title="Call the bank again", priority="high", due_at=later(clock, days=2)
    )
    lifecycle, changed, rearmed = written_since(services, seen)
    changes = {
        "title": {"old": "Call the bank", "new": "Call the bank again"},
        "priority": {"old": "medium", "new": "high"},
        "due_at": {"old": rfc3339(task.due_at), "new": rfc3339(updated.due_at)},
    }
    assert (lifecycle.topic, lifecycle.body["event_type"]) == (events.TASK_EVENTS, events.TASK_UPDATED)
    assert lifecycle.body["payload"] == {"task": task_json(updated), "changes": changes}
    assert (changed.topic, changed.body["event_type"]) == (events.TASK_UPDATES, events.TASK_CHANGED)
    assert changed.body["payload"] == {"changes": changes}
    assert rearmed.body["event_type"] == events.REMINDER_SCHEDULED, "the moved reminder's event is missing"
    assert rearmed.body["payload"]["remind_at"] == later(clock, days=2, minutes=-15)


def test_an_update_that_changes_nothing_writes_nothing(services: Services, user: User, clock: Clock) -> None:
    task = create(
        services, user, tags=["money"], due_at=later(clock, days=1), reminders=[{"before": "PT15M"}]
    )
    seen = len(outbox(services.database))
    clock.advance(minutes=1)
    patch(services, user, task.id, title=task.title, tags=["money"], reminders=[{"before": "PT15M"}])
    assert written_since(services, seen) == []


def test_completing_writes_task_completed_once_however_often_it_is_completed(
    services: Services, user: User, clock: Clock
) -> None:
    task = create(services, user)
    clock.advance(minutes=1)
    services.tasks.complete_task(user, task.id)
    services.tasks.complete_task(user, task.id)
    assert event_types(services.database) == [events.TASK_CREATED, events.TASK_COMPLETED, events.TASK_CHANGED]
    completed = outbox(services.database)[1]
    assert completed.body["payload"]["changes"] == {
        "status": {"old": "pending", "new": "completed"},
        "completed_at": {"old": None, "new": rfc3339(clock.now)},
    }
    assert completed.body["payload"]["task"]["status"] == "completed"


def test_deleting_writes_task_deleted_with_the_task_as_it_was_and_the_scope(
    services: Services, user: User, clock: Clock
) -> None:
    task = create(services, user, description="About the mortgage.")
    services.tasks.delete_task(user, task.id)
    deleted = outbox(services.database)[-1]
    assert (deleted.topic, deleted.body["event_type"]) == (events.TASK_EVENTS, events.TASK_DELETED)
    assert deleted.body["payload"] == {"task": task_json(task), "scope": "occurrence"}


def test_deleting_a_series_writes_one_task_deleted_for_its_pending_occurrence_with_scope_series(
    services: Services, user: User, clock: Clock
) -> None:
    task = create(services, user, due_at=later(clock, days=1), recurrence={"rule": "daily"})
    seen = len(outbox(services.database))
    services.tasks.delete_task(user, task.id, "series")
    (deleted,) = written_since(services, seen)
    assert deleted.body["event_type"] == events.TASK_DELETED and deleted.body["task_id"] == str(task.id)
    assert deleted.body["payload"]["scope"] == "series"
    assert deleted.body["series_id"] == str(task.series_id)


def test_skipping_an_occurrence_writes_task_updated_with_its_status(
    services: Services, user: User, clock: Clock
) -> None:
    task = create(services, user, due_at=later(clock, days=1), recurrence={"rule": "daily"})
    seen = len(outbox(services.database))
    services.series.skip_occurrence(user, task.id)
    updated, changed = written_since(services, seen)
    assert [updated.body["event_type"], changed.body["event_type"]] == [
        events.TASK_UPDATED,
        events.TASK_CHANGED,
    ]
    assert updated.body["payload"]["changes"] == {"status": {"old": "pending", "new": "skipped"}}


def test_the_next_occurrence_is_announced_once_however_often_its_step_runs(
    monkeypatch: pytest.MonkeyPatch, services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    first = create(
        services,
        user,
        due_at=later(clock, days=1),
        recurrence={"rule": "daily"},
        reminders=[{"before": "PT15M"}],
    )
    services.tasks.complete_task(user, first.id)
    seen = len(outbox(services.database))
    steps: list[Any] = []
    (state,) = workflows.started
    run_generation(
        monkeypatch,
        services.steps,
        state,
        clock.now,
        before=lambda name, arg: steps.append(arg) if name == CREATE_NEXT_OCCURRENCE else None,
    )
    services.steps.create_next_occurrence(steps[0])  # the activity retried
    created, scheduled = written_since(services, seen)
    assert created.body["event_type"] == events.TASK_CREATED
    assert created.body["payload"]["task"]["occurrence_index"] == 2
    assert scheduled.body["event_type"] == events.REMINDER_SCHEDULED
    assert scheduled.body["task_id"] == created.body["task_id"]


def test_a_change_that_rolls_back_writes_no_event(
    monkeypatch: pytest.MonkeyPatch,
    services: Services,
    workflows: FakeWorkflows,
    jobs: FakeJobs,
    user: User,
    clock: Clock,
) -> None:
    """The create fails after writing task.created (arming its reminder's event
    raises): the event goes with the rolled-back task, and Dapr is asked nothing."""

    def fails(*args: Any) -> None:
        raise RuntimeError("the transaction fails after its first event")

    monkeypatch.setattr(ReminderLedger, "emit_armed", fails)
    with pytest.raises(RuntimeError):
        create(
            services,
            user,
            due_at=later(clock, days=1),
            recurrence={"rule": "daily"},
            reminders=[{"before": "PT1H"}],
        )
    services.job_calls.close()
    assert outbox(services.database) == []
    assert services.tasks.list_tasks(user, TaskQuery()).items == []
    assert jobs.calls == [] and workflows.started == []


def test_a_refused_update_writes_no_event(services: Services, user: User, clock: Clock) -> None:
    """Refused after the fields were set (a `before` reminder left without a due time)."""
    task = create(services, user, due_at=later(clock, days=1), reminders=[{"before": "PT15M"}])
    seen = len(outbox(services.database))
    with pytest.raises(InvalidInput):
        patch(services, user, task.id, title="Renamed", due_at=None)
    assert written_since(services, seen) == []


def test_every_event_is_a_valid_envelope_with_a_unique_id_keyed_by_its_user(
    services: Services, jobs: FakeJobs, user: User, clock: Clock
) -> None:
    other = User(id=f"other-{uuid.uuid4().hex[:8]}", email="other@example.com")
    occurred: dict[str, str] = {}
    for who in (user, other):
        task = create(services, who, due_at=later(clock, days=1), reminders=[{"before": "PT15M"}])
        clock.advance(seconds=1)
        patch(services, who, task.id, title="Renamed")
        clock.advance(seconds=1)
        services.tasks.complete_task(who, task.id)
        clock.advance(seconds=1)
        services.tasks.delete_task(who, task.id)
        recurring = create(services, who, due_at=later(clock, days=1), recurrence={"rule": "daily"})
        services.series.control_series(who, recurring.series_id, "stop")
        occurred[who.id] = rfc3339(clock.now) or ""
    rows = outbox(services.database)
    assert len(rows) == 2 * 9
    for row in rows:
        event = events.parse_event(row.body)
        assert event.event_version == "1.0" and row.topic == events.TOPIC_OF[event.event_type]
        assert row.event_id == event.event_id
        assert row.partition_key == event.user_id and event.user_id in occurred
    assert len({row.event_id for row in rows}) == len(rows)
    assert {row.partition_key for row in rows} == {user.id, other.id}
    # Each user's events are in the order they happened.
    for who in (user, other):
        times = [row.body["occurred_at"] for row in rows if row.partition_key == who.id]
        assert times == sorted(times) and times[-1] == occurred[who.id]
