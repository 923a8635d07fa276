"""Recurring series as Dapr workflows, end to end through the real stack:
REST -> service -> workflow (daprd, placement, scheduler) -> activities -> PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from devstack.stack import Stack
from tests.helpers import auth
from tests.integration.support import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

NEW_YORK = ZoneInfo("America/New_York")


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def tomorrow_at(hour: int, zone: ZoneInfo = NEW_YORK) -> datetime:
    local = datetime.now(zone).replace(hour=hour, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return local


def create_recurring(
    client: httpx.Client, user: str, rule: str, due: datetime, **recurrence: str
) -> dict[str, Any]:
    response = client.post(
        "/v1/tasks",
        json={
            "title": "Stand-up notes",
            "tags": ["work"],
            "priority": "high",
            "reminders": [{"before": "PT10M"}],
            "due_at": due.isoformat(),
            "recurrence": {"rule": rule, "timezone": str(due.tzinfo), **recurrence},
        },
        headers=auth(user),
    )
    assert response.status_code == 201, response.text
    task = response.json()
    assert task["series_id"] and task["occurrence_index"] == 1
    return task


def tasks_of(client: httpx.Client, user: str, series_id: str) -> list[dict[str, Any]]:
    response = client.get("/v1/tasks", params={"series_id": series_id, "limit": 200}, headers=auth(user))
    assert response.status_code == 200, response.text
    return sorted(response.json()["items"], key=lambda t: t["occurrence_index"])


def occurrence(
    client: httpx.Client, user: str, series_id: str, index: int, timeout: float = 30
) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        return next((t for t in tasks_of(client, user, series_id) if t["occurrence_index"] == index), None)

    return wait_until(find, timeout=timeout, what=f"occurrence #{index} of series {series_id}")  # type: ignore[no-any-return]


def complete(client: httpx.Client, user: str, task_id: str) -> None:
    response = client.post(f"/v1/tasks/{task_id}/complete", headers=auth(user))
    assert response.status_code == 200, response.text


def series(client: httpx.Client, user: str, series_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/series/{series_id}", headers=auth(user))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def preview(client: httpx.Client, rule: str, dtstart: str, limit: int = 3) -> httpx.Response:
    """POST /v1/recurrence/preview (no token) in New York wall time."""
    return client.post(
        "/v1/recurrence/preview",
        json={"rule": rule, "dtstart": dtstart, "timezone": "America/New_York", "limit": limit},
    )


def local(instant: str) -> datetime:
    return datetime.fromisoformat(instant).astimezone(NEW_YORK)


def test_daily_series_creates_next_occurrence_at_same_local_time(client: httpx.Client) -> None:
    user = new_user()
    first = create_recurring(client, user, "daily", tomorrow_at(9))
    assert first["recurrence"] == {
        "rule": "FREQ=DAILY",
        "timezone": "America/New_York",
        "basis": "schedule",
        "exdates": [],
        "rdates": [],
    }
    sid = first["series_id"]
    wait_until(
        lambda: series(client, user, sid)["workflow"]["runtime_status"] == "RUNNING",
        what="the workflow to run",
    )

    complete(client, user, first["id"])
    second = occurrence(client, user, sid, 2)
    assert local(second["due_at"]) == local(first["due_at"]) + timedelta(days=1)
    assert local(second["due_at"]).hour == 9
    # The new occurrence copies the template.
    assert (second["title"], second["tags"], second["priority"]) == ("Stand-up notes", ["work"], "high")
    assert second["reminders"] == [{"before": "PT10M", "at": None}]
    assert second["status"] == "pending"

    status = wait_until(
        lambda: (
            (s := series(client, user, sid))["workflow"]["custom_status"]
            and s["workflow"]["custom_status"]["occurrence_index"] == 2
            and s
        ),
        what="custom status of generation 2",
    )
    assert status["workflow"]["custom_status"]["current_task_id"] == second["id"]
    assert status["workflow"]["custom_status"]["paused"] is False
    assert status["current_task"]["id"] == second["id"]
    assert status["occurrences_created"] == 2
    assert status["text"] == "daily at 09:00 (America/New_York)"


def test_three_generations_in_a_row(client: httpx.Client) -> None:
    user = new_user()
    task = create_recurring(client, user, "FREQ=WEEKLY;BYDAY=MO,WE,FR", tomorrow_at(18))
    sid = task["series_id"]
    seen = [task]
    for index in (2, 3, 4):
        complete(client, user, seen[-1]["id"])
        seen.append(occurrence(client, user, sid, index))
    dues = [local(t["due_at"]) for t in seen]
    assert dues == sorted(dues) and len(set(dues)) == 4
    assert all(d.strftime("%a") in ("Mon", "Wed", "Fri") and d.hour == 18 for d in dues)
    assert [t["status"] for t in tasks_of(client, user, sid)] == ["completed"] * 3 + ["pending"]


def test_count_ends_the_series_after_the_last_occurrence(client: httpx.Client) -> None:
    user = new_user()
    task = create_recurring(client, user, "FREQ=DAILY;COUNT=3", tomorrow_at(8))
    sid = task["series_id"]
    for index in (2, 3):
        complete(client, user, task["id"])
        task = occurrence(client, user, sid, index)
    complete(client, user, task["id"])
    ended = wait_until(
        lambda: (s := series(client, user, sid))["workflow"]["runtime_status"] == "COMPLETED" and s,
        what="the workflow to complete",
    )
    assert ended["status"] == "finished"
    assert ended["next_due_at"] is None
    assert len(tasks_of(client, user, sid)) == 3


def test_until_ends_the_series(client: httpx.Client) -> None:
    user = new_user()
    start = tomorrow_at(7)
    until = (start + timedelta(days=1, hours=1)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    task = create_recurring(client, user, f"FREQ=DAILY;UNTIL={until}", start)
    sid = task["series_id"]
    complete(client, user, task["id"])
    second = occurrence(client, user, sid, 2)
    complete(client, user, second["id"])
    wait_until(lambda: series(client, user, sid)["status"] == "finished", what="the series to finish")
    assert len(tasks_of(client, user, sid)) == 2


def test_pause_holds_the_series_until_resume(client: httpx.Client) -> None:
    user = new_user()
    task = create_recurring(client, user, "daily", tomorrow_at(9))
    sid = task["series_id"]
    paused = client.post(f"/v1/series/{sid}/pause", headers=auth(user))
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    wait_until(
        lambda: (series(client, user, sid)["workflow"]["custom_status"] or {}).get("paused") is True,
        what="the workflow to report paused",
    )
    complete(client, user, task["id"])
    # Give the workflow every chance to (wrongly) move on: past its grace timer too.
    wait_until(lambda: series(client, user, sid)["workflow"]["runtime_status"] == "RUNNING", what="running")
    import time

    time.sleep(6)
    assert len(tasks_of(client, user, sid)) == 1

    resumed = client.post(f"/v1/series/{sid}/resume", headers=auth(user))
    assert resumed.status_code == 200 and resumed.json()["status"] == "active"
    occurrence(client, user, sid, 2)


def test_skip_marks_current_skipped_and_creates_the_next(client: httpx.Client) -> None:
    user = new_user()
    task = create_recurring(client, user, "daily", tomorrow_at(9))
    sid = task["series_id"]
    response = client.post(f"/v1/series/{sid}/skip", headers=auth(user))
    assert response.status_code == 200, response.text
    nxt = occurrence(client, user, sid, 2)
    assert local(nxt["due_at"]) == local(task["due_at"]) + timedelta(days=1)
    first = client.get(f"/v1/tasks/{task['id']}", headers=auth(user)).json()
    assert first["status"] == "skipped"
    # A skipped occurrence cannot be completed afterwards.
    assert client.post(f"/v1/tasks/{task['id']}/complete", headers=auth(user)).status_code == 409


def test_stop_ends_the_workflow_and_removes_the_pending_occurrence(client: httpx.Client) -> None:
    user = new_user()
    task = create_recurring(client, user, "daily", tomorrow_at(9))
    sid = task["series_id"]
    stopped = client.post(f"/v1/series/{sid}/stop", headers=auth(user))
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    wait_until(
        lambda: series(client, user, sid)["workflow"]["runtime_status"] == "COMPLETED",
        what="the workflow to end",
    )
    assert tasks_of(client, user, sid) == []
    resumed = client.post(f"/v1/series/{sid}/resume", headers=auth(user))
    assert resumed.status_code == 409
    assert (
        resumed.json()["detail"]
        == "The series has ended (stopped); only an active or paused series can resume."
    )


def test_delete_with_series_scope_stops_the_series(client: httpx.Client) -> None:
    user = new_user()
    task = create_recurring(client, user, "weekly", tomorrow_at(9))
    sid = task["series_id"]
    assert (
        client.delete(f"/v1/tasks/{task['id']}", params={"scope": "series"}, headers=auth(user)).status_code
        == 204
    )
    wait_until(lambda: series(client, user, sid)["status"] == "stopped", what="stopped series")


def test_completion_basis_counts_from_the_completion(client: httpx.Client) -> None:
    user = new_user()
    # Due in three days, completed today: the next one is 2 days after today, not after the due date.
    due = tomorrow_at(9) + timedelta(days=2)
    task = create_recurring(client, user, "every 2 days", due, basis="completion")
    complete(client, user, task["id"])
    nxt = occurrence(client, user, task["series_id"], 2)
    today = datetime.now(NEW_YORK).date()
    assert local(nxt["due_at"]).date() == today + timedelta(days=2)
    assert local(nxt["due_at"]).hour == 9


def test_completion_without_its_event_is_reconciled(client: httpx.Client, stack: Stack) -> None:
    """The completion reaches the database but no event reaches the workflow
    (as in dapr/dapr#8277): the timer/sweeper reconciliation still advances."""
    user = new_user()
    task = create_recurring(client, user, "daily", datetime.now(NEW_YORK) + timedelta(minutes=5))
    sid = task["series_id"]
    wait_until(lambda: series(client, user, sid)["workflow"]["runtime_status"] == "RUNNING", what="running")
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE tasks SET status = 'completed', completed_at = now(), updated_at = now() WHERE id = %s",
            (task["id"],),
        )
    nxt = occurrence(client, user, sid, 2, timeout=60)
    assert local(nxt["due_at"]) == local(task["due_at"]) + timedelta(days=1)


def test_changing_the_rule_applies_from_the_current_occurrence(client: httpx.Client) -> None:
    user = new_user()
    task = create_recurring(client, user, "daily", tomorrow_at(9))
    response = client.patch(
        f"/v1/tasks/{task['id']}",
        json={"recurrence": {"rule": "weekly", "timezone": "America/New_York"}},
        headers=auth(user),
    )
    assert response.status_code == 200, response.text
    assert response.json()["recurrence"]["rule"].startswith("FREQ=WEEKLY")
    complete(client, user, task["id"])
    nxt = occurrence(client, user, task["series_id"], 2)
    assert local(nxt["due_at"]) == local(task["due_at"]) + timedelta(days=7)


def test_first_occurrence_moved_before_the_start_and_completed_moves_the_series_on(
    client: httpx.Client,
) -> None:
    """Daily 09:00, #1 moved to 08:30 (before the series' start) and completed: this used to FAIL
    the workflow for good. #2 is the next day's 09:00 and the workflow keeps running."""
    user = new_user()
    nine = tomorrow_at(9)
    first = create_recurring(client, user, "daily", nine)
    sid = first["series_id"]
    moved = client.patch(
        f"/v1/tasks/{first['id']}",
        json={"due_at": (nine - timedelta(minutes=30)).isoformat()},
        headers=auth(user),
    )
    assert moved.status_code == 200, moved.text
    assert local(series(client, user, sid)["next_due_at"]) == nine - timedelta(minutes=30)
    complete(client, user, first["id"])
    second = occurrence(client, user, sid, 2)
    assert local(second["due_at"]) == nine + timedelta(days=1)
    workflow = wait_until(
        lambda: (
            (w := client.get(f"/v1/workflows/series-{sid}", headers=auth(user)).json())
            and (w.get("custom_status") or {}).get("occurrence_index") == 2
            and w
        ),
        what="the workflow to reach occurrence #2",
    )
    assert workflow["runtime_status"] == "RUNNING"
    assert len(tasks_of(client, user, sid)) == 2


@pytest.mark.parametrize(
    ("recurrence", "field", "code"),
    [
        ({"rule": "FREQ=DAILLY"}, "recurrence.rule", "INVALID_RECURRENCE_RULE"),
        ({"rule": "daily", "timezone": "Mars/Olympus"}, "recurrence.timezone", "UNKNOWN_TIMEZONE"),
        ({"rule": "FREQ=DAILY;UNTIL=20200101T000000Z"}, "due_at", "UNTIL_BEFORE_DTSTART"),
        ({"rule": "FREQ=MINUTELY;INTERVAL=5"}, "recurrence.rule", "RULE_TOO_FREQUENT"),
        ({"rule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"}, "recurrence.rule", "RULE_YIELDS_NOTHING"),
    ],
)
def test_bad_rules_get_422_naming_the_field(
    client: httpx.Client, recurrence: dict[str, str], field: str, code: str
) -> None:
    response = client.post(
        "/v1/tasks",
        json={"title": "x", "due_at": tomorrow_at(9).isoformat(), "recurrence": recurrence},
        headers=auth(new_user()),
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == code
    assert problem["errors"][0]["field"] == field


def test_recurring_task_needs_a_due_date(client: httpx.Client) -> None:
    response = client.post(
        "/v1/tasks", json={"title": "x", "recurrence": {"rule": "daily"}}, headers=auth(new_user())
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "due_at"


def test_preview_needs_no_auth_and_uses_wall_time(client: httpx.Client) -> None:
    response = preview(client, "weekdays", "2026-03-06T09:00:00")
    assert response.status_code == 200, response.text
    body = response.json()
    # Friday before the DST switch (14:00Z), then Monday and Tuesday after it (13:00Z).
    assert body["occurrences"] == ["2026-03-06T14:00:00Z", "2026-03-09T13:00:00Z", "2026-03-10T13:00:00Z"]
    assert body["text"] == "every weekday at 09:00 (America/New_York)"
    bad = client.post("/v1/recurrence/preview", json={"rule": "sometimes", "dtstart": "2026-03-06T09:00:00"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "rule"
    too_many = client.post(
        "/v1/recurrence/preview", json={"rule": "daily", "dtstart": "2026-03-06T09:00:00", "limit": 101}
    )
    assert too_many.status_code == 422


def test_series_of_another_user_is_404(client: httpx.Client) -> None:
    alice, bob = new_user(), new_user()
    task = create_recurring(client, alice, "daily", tomorrow_at(9))
    sid = task["series_id"]
    assert client.get(f"/v1/series/{sid}", headers=auth(bob)).status_code == 404
    for action in ("pause", "resume", "skip", "stop"):
        assert client.post(f"/v1/series/{sid}/{action}", headers=auth(bob)).status_code == 404
    assert series(client, alice, sid)["status"] == "active"


def test_weekdays_in_words_preview_and_create_the_rrule_they_name(client: httpx.Client) -> None:
    listed = preview(client, "every 2nd and 4th thursday", "2026-12-10T09:00:00")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["occurrences"] == ["2026-12-10T14:00:00Z", "2026-12-24T14:00:00Z", "2027-01-14T14:00:00Z"]
    assert "the second Thursday and the fourth Thursday" in body["text"]
    user = new_user()
    task = create_recurring(client, user, "every other tuesday", tomorrow_at(9))
    assert task["recurrence"]["rule"] == "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU"
    complete(client, user, task["id"])
    second = occurrence(client, user, task["series_id"], 2)
    assert local(second["due_at"]).weekday() == 1 and local(second["due_at"]).hour == 9
