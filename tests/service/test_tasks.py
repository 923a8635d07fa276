"""The task rules of the REST contract (DESIGN §4) on the real database: what a
create stores and refuses, what a list returns for each filter and how its
pages add up, that a user reaches only their own tasks, what a PATCH changes,
and what completing and deleting do."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlmodel import select

from api.deps import Services
from tests.service.conftest import Clock, FakeJobs, FakeWorkflows
from tests.service.support import create, later, outbox, patch, run_generation
from todos.core.errors import Conflict, InvalidInput, NotFound
from todos.core.fields import rfc3339
from todos.core.users import User
from todos.reminders.models import Reminder
from todos.reminders.rules import job_name
from todos.series.contract import OCCURRENCE_SKIPPED, SERIES_STOPPED
from todos.series.models import Series, SeriesStatus
from todos.tasks.models import Task, TaskStatus
from todos.tasks.service import TaskQuery

pytestmark = [pytest.mark.service, pytest.mark.timeout(120)]


def listed(services: Services, user: User, **query: Any) -> list[uuid.UUID]:
    """The ids of one page of up to 200, oldest first (ties in creation time by id)."""
    return [task.id for task in services.tasks.list_tasks(user, TaskQuery(limit=200, **query)).items]


def found(services: Services, user: User, **query: Any) -> set[uuid.UUID]:
    return set(listed(services, user, **query))


def rows(services: Services, model: type[Any], **where: Any) -> list[Any]:
    with services.database.session() as session:
        statement = select(model)
        for name, value in where.items():
            statement = statement.where(getattr(model, name) == value)
        return list(session.exec(statement))


# ---- create ------------------------------------------------------------------


def test_a_created_task_has_the_fields_sent_and_a_reminder_row_per_reminder(
    services: Services, user: User, clock: Clock
) -> None:
    due = clock.now + timedelta(days=1)
    at = clock.now + timedelta(hours=3)
    created = create(
        services,
        user,
        title="Call the bank",
        description="About the mortgage.",
        priority="high",
        tags=[" money ", "money", "calls"],
        due_at=due.astimezone(timezone(timedelta(hours=-5))).isoformat(),  # stored as UTC
        reminders=[{"before": "PT15M"}, {"at": rfc3339(at)}],
    )
    assert (created.title, created.description, created.priority) == (
        "Call the bank",
        "About the mortgage.",
        "high",
    )
    assert created.tags == ["money", "calls"], "tags are trimmed and each kept once"
    assert created.due_at == due and created.user_id == user.id
    assert created.status == TaskStatus.pending and created.completed_at is None
    assert created.created_at == created.updated_at == clock.now
    assert (created.series_id, created.occurrence_index, created.recurrence) == (None, None, None)
    assert [r.to_json() for r in created.reminders] == [{"before": "PT15M"}, {"at": rfc3339(at)}]
    assert [(r.index, r.remind_at, r.status) for r in created.reminder_status] == [
        (0, due - timedelta(minutes=15), "scheduled"),
        (1, at, "scheduled"),
    ]
    assert sorted(row.n for row in rows(services, Reminder, task_id=created.id)) == [0, 1]
    assert services.tasks.get_task(user, created.id) == created


def test_a_before_reminder_without_a_due_time_is_refused_naming_that_reminder(
    services: Services, user: User, clock: Clock
) -> None:
    with pytest.raises(InvalidInput) as refused:
        create(services, user, reminders=[{"at": later(clock, hours=1)}, {"before": "PT15M"}])
    assert refused.value.field == "reminders.1.before"
    assert rows(services, Task) == [] and rows(services, Reminder) == []


def test_a_recurring_task_without_a_due_time_is_refused_naming_due_at(
    services: Services, workflows: FakeWorkflows, user: User
) -> None:
    with pytest.raises(InvalidInput) as refused:
        create(services, user, recurrence={"rule": "daily"})
    assert refused.value.field == "due_at"
    assert rows(services, Task) == [] and rows(services, Series) == [] and workflows.started == []


def test_a_rule_that_is_not_a_rule_is_refused_naming_recurrence_rule(
    services: Services, user: User, clock: Clock
) -> None:
    with pytest.raises(InvalidInput) as refused:
        create(services, user, due_at=later(clock, days=1), recurrence={"rule": "every blue moon"})
    assert refused.value.field == "recurrence.rule" and refused.value.code == "INVALID_RECURRENCE_RULE"
    assert rows(services, Task) == []


# ---- list --------------------------------------------------------------------


def test_the_status_filter_lists_pending_completed_or_all_tasks(
    services: Services, user: User, clock: Clock
) -> None:
    todo, done, also_todo = (create(services, user, title=title) for title in ("To do", "Done", "Also to do"))
    services.tasks.complete_task(user, done.id)
    assert found(services, user, status="pending") == {todo.id, also_todo.id}
    assert found(services, user, status="completed") == {done.id}
    assert found(services, user, status="all") == {todo.id, done.id, also_todo.id}


def test_due_before_and_due_after_are_exclusive_bounds_that_leave_out_undated_tasks(
    services: Services, user: User, clock: Clock
) -> None:
    days = [clock.now + timedelta(days=n) for n in (1, 2, 3)]
    one, two, three = (create(services, user, due_at=rfc3339(day)) for day in days)
    create(services, user, title="Some day")
    assert found(services, user, due_before=days[1]) == {one.id}
    assert found(services, user, due_after=days[1]) == {three.id}
    assert found(services, user, due_after=days[0], due_before=days[2]) == {two.id}
    assert found(services, user, due_after=days[0] - timedelta(seconds=1)) == {one.id, two.id, three.id}


def test_the_series_filter_lists_only_that_series_occurrences(
    services: Services, user: User, clock: Clock
) -> None:
    recurring = create(services, user, due_at=later(clock, days=1), recurrence={"rule": "daily"})
    create(services, user, due_at=later(clock, days=1), recurrence={"rule": "weekly"})
    create(services, user, title="One-off")
    assert found(services, user, series_id=recurring.series_id) == {recurring.id}
    assert listed(services, user, series_id=uuid.uuid4()) == []


def test_the_tag_filter_lists_the_tasks_carrying_that_tag(services: Services, user: User) -> None:
    home = create(services, user, tags=["home"])
    both = create(services, user, tags=["work", "home"])
    create(services, user, tags=["work"])
    create(services, user, tags=["homework"])
    assert found(services, user, tag="home") == {home.id, both.id}
    assert listed(services, user, tag="garden") == []


def test_cursor_pages_are_disjoint_and_together_list_every_matching_task_once(
    services: Services, user: User, clock: Clock
) -> None:
    """Three tasks share a creation time (the cursor's tie-break is the id); two
    completed ones in between are left out of every page of `status=pending`."""
    pending = [create(services, user, title=f"Same instant {n}").id for n in range(3)]
    for n in range(6):
        clock.advance(seconds=1)
        task = create(services, user, title=f"Later {n}")
        if n in (1, 4):
            services.tasks.complete_task(user, task.id)
        else:
            pending.append(task.id)
    pages: list[list[uuid.UUID]] = []
    cursor: str | None = None
    while True:
        page = services.tasks.list_tasks(user, TaskQuery(status="pending", limit=3, cursor=cursor))
        pages.append([task.id for task in page.items])
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
        assert len(pages) < 10, "the pages never end"
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [task_id for page in pages for task_id in page] == listed(services, user, status="pending")
    assert sorted(task_id for page in pages for task_id in page) == sorted(pending)


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        _cursor({"created_at": "2026-01-01T00:00:00Z"}),
        _cursor(["2026-01-01T00:00:00+00:00", "not a uuid"]),
        _cursor(["2026-01-01T00:00:00+00:00", 5]),
        _cursor(["0001-01-01T00:00:00+01:00", str(uuid.UUID(int=0))]),
    ],
    ids=["text", "object", "bad-id", "number-id", "before-year-one"],
)
def test_a_cursor_this_api_did_not_return_is_refused_naming_cursor(
    services: Services, user: User, cursor: str
) -> None:
    create(services, user)
    with pytest.raises(InvalidInput) as refused:
        services.tasks.list_tasks(user, TaskQuery(cursor=cursor))
    assert refused.value.field == "cursor"


@pytest.mark.parametrize("limit", [0, 201])
def test_a_page_limit_outside_1_to_200_is_refused_naming_limit(
    services: Services, user: User, limit: int
) -> None:
    with pytest.raises(InvalidInput) as refused:
        services.tasks.list_tasks(user, TaskQuery(limit=limit))
    assert refused.value.field == "limit"


def test_a_page_holds_at_most_limit_tasks(services: Services, user: User) -> None:
    for _ in range(3):
        create(services, user)
    assert len(services.tasks.list_tasks(user, TaskQuery(limit=1)).items) == 1
    assert len(services.tasks.list_tasks(user, TaskQuery(limit=200)).items) == 3


# ---- owner isolation -----------------------------------------------------------


def test_another_users_task_looks_missing_to_every_operation_and_is_not_listed(
    services: Services, user: User, clock: Clock
) -> None:
    task = create(services, user, due_at=later(clock, days=1), reminders=[{"before": "PT5M"}])
    mallory = User(id=f"other-{uuid.uuid4().hex[:8]}", email="mallory@example.com")
    operations: dict[str, Callable[[uuid.UUID], object]] = {
        "get": lambda task_id: services.tasks.get_task(mallory, task_id),
        "update": lambda task_id: patch(services, mallory, task_id, title="Mine now"),
        "complete": lambda task_id: services.tasks.complete_task(mallory, task_id),
        "delete": lambda task_id: services.tasks.delete_task(mallory, task_id),
        "snooze": lambda task_id: services.reminders.snooze(mallory, task_id, 5),
    }
    for name, operation in operations.items():
        missing = uuid.uuid4()
        with pytest.raises(NotFound) as theirs:
            operation(task.id)
        with pytest.raises(NotFound) as nobodys:
            operation(missing)
        assert theirs.value.field == "task_id", name
        assert theirs.value.detail == nobodys.value.detail.replace(str(missing), str(task.id)), name
    assert listed(services, mallory) == []
    assert services.tasks.get_task(user, task.id) == task, "another user's call changed the task"


# ---- update --------------------------------------------------------------------


def test_a_patch_changes_only_the_fields_it_sends(services: Services, user: User, clock: Clock) -> None:
    task = create(
        services,
        user,
        description="About the mortgage.",
        priority="high",
        tags=["money"],
        due_at=later(clock, days=1),
        reminders=[{"before": "PT15M"}],
    )
    clock.advance(minutes=5)
    updated = patch(services, user, task.id, title="Call the bank again")
    assert updated.title == "Call the bank again" and updated.updated_at == clock.now
    unchanged = {"title", "updated_at", "reminder_status"}
    assert updated.model_dump(exclude=unchanged) == task.model_dump(exclude=unchanged)
    assert services.tasks.get_task(user, task.id) == updated


def test_null_clears_the_description_and_the_due_time(services: Services, user: User, clock: Clock) -> None:
    task = create(services, user, description="About the mortgage.", due_at=later(clock, days=1))
    patch(services, user, task.id, description=None)
    cleared = patch(services, user, task.id, due_at=None)
    assert (cleared.description, cleared.due_at, cleared.title) == (None, None, task.title)


@pytest.mark.parametrize("field", ["title", "priority", "tags", "reminders", "recurrence"])
def test_null_is_refused_for_a_field_that_cannot_be_cleared(
    services: Services, user: User, clock: Clock, field: str
) -> None:
    task = create(services, user, due_at=later(clock, days=1), recurrence={"rule": "daily"})
    with pytest.raises(InvalidInput) as refused:
        patch(services, user, task.id, **{field: None})
    assert refused.value.field == field
    assert services.tasks.get_task(user, task.id) == task


def test_a_body_that_changes_nothing_is_refused(services: Services, user: User) -> None:
    task = create(services, user)
    with pytest.raises(InvalidInput) as refused:
        patch(services, user, task.id)
    assert refused.value.field == "body"


def test_clearing_the_due_time_under_a_before_reminder_is_refused_and_changes_nothing(
    services: Services, user: User, clock: Clock
) -> None:
    task = create(services, user, due_at=later(clock, days=1), reminders=[{"before": "PT15M"}])
    with pytest.raises(InvalidInput) as refused:
        patch(services, user, task.id, title="Renamed", due_at=None)
    assert refused.value.field == "due_at"
    assert services.tasks.get_task(user, task.id) == task, "the refused PATCH changed the task"


# ---- complete and delete ---------------------------------------------------------


def test_completing_a_completed_task_changes_nothing_and_emits_nothing(
    services: Services, jobs: FakeJobs, user: User, clock: Clock
) -> None:
    task = create(services, user, due_at=later(clock, days=1), reminders=[{"before": "PT15M"}])
    done = services.tasks.complete_task(user, task.id)
    assert done.status == TaskStatus.completed and done.completed_at == clock.now
    services.job_calls.close()
    events, calls = len(outbox(services.database)), list(jobs.calls)
    clock.advance(hours=1)
    again = services.tasks.complete_task(user, task.id)
    services.job_calls.close()
    assert again == done and services.tasks.get_task(user, task.id) == done
    assert len(outbox(services.database)) == events and jobs.calls == calls


def test_a_skipped_occurrence_cannot_be_completed(services: Services, user: User, clock: Clock) -> None:
    task = create(services, user, due_at=later(clock, days=1), recurrence={"rule": "daily"})
    services.series.skip_occurrence(user, task.id)
    with pytest.raises(Conflict) as refused:
        services.tasks.complete_task(user, task.id)
    assert refused.value.status == 409 and refused.value.field == "task_id"
    assert services.tasks.get_task(user, task.id).status == TaskStatus.skipped


def test_deleting_a_one_off_task_removes_it_its_reminders_and_their_jobs(
    services: Services, jobs: FakeJobs, user: User, clock: Clock
) -> None:
    task = create(services, user, due_at=later(clock, days=1), reminders=[{"before": "PT15M"}])
    services.job_calls.close()
    assert job_name(task.id, 0) in jobs.armed
    services.tasks.delete_task(user, task.id)
    services.job_calls.close()
    with pytest.raises(NotFound):
        services.tasks.get_task(user, task.id)
    assert listed(services, user) == [] and rows(services, Reminder) == []
    assert ("delete", job_name(task.id, 0)) in jobs.calls and jobs.armed == {}


def test_deleting_the_current_occurrence_moves_the_series_on(
    services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    task = create(services, user, due_at=later(clock, days=1), recurrence={"rule": "daily"})
    services.tasks.delete_task(user, task.id)
    assert (str(task.series_id), OCCURRENCE_SKIPPED, None) in workflows.events
    (series,) = rows(services, Series)
    assert series.status == SeriesStatus.active


def test_deleting_with_scope_series_stops_it_and_removes_only_its_pending_occurrence(
    monkeypatch: pytest.MonkeyPatch,
    services: Services,
    workflows: FakeWorkflows,
    jobs: FakeJobs,
    user: User,
    clock: Clock,
) -> None:
    first = create(
        services,
        user,
        due_at=later(clock, days=1),
        recurrence={"rule": "daily"},
        reminders=[{"before": "PT1H"}],
    )
    services.tasks.complete_task(user, first.id)
    (state,) = workflows.started
    run_generation(monkeypatch, services.steps, state, clock.now)
    (second,) = [task for task in rows(services, Task) if task.occurrence_index == 2]
    services.job_calls.close()
    assert job_name(second.id, 0) in jobs.armed

    services.tasks.delete_task(user, second.id, "series")
    services.job_calls.close()
    (series,) = rows(services, Series)
    assert series.status == SeriesStatus.stopped and series.ended_at == clock.now
    assert [(task.id, task.status) for task in rows(services, Task)] == [(first.id, "completed")]
    assert rows(services, Reminder, task_id=second.id) == []
    assert job_name(second.id, 0) not in jobs.armed
    assert (str(series.id), SERIES_STOPPED, None) in workflows.events
    with pytest.raises(Conflict):
        services.series.control_series(user, series.id, "resume")


def test_times_are_stored_and_shown_in_utc(services: Services, user: User) -> None:
    task = create(services, user, due_at="2026-12-01T09:00:00-05:00")
    assert task.due_at == datetime.fromisoformat("2026-12-01T14:00:00+00:00")
    assert task.model_dump(mode="json")["due_at"] == "2026-12-01T14:00:00Z"
