"""Reminders end to end on the real stack: REST -> service -> Dapr Jobs API
(daprd + scheduler) -> POST /job/{name} -> SMTP (the stack's aiosmtpd sink).

Each test uses its own user, so its own recipient address; the sink's rules
make that address fail on purpose where a test needs SMTP errors. Where a
test shows that something does NOT arrive, it waits for a later "canary"
reminder of the same user first: once that one is in, the scheduler has had
its chance to fire the other.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import pytest

from devstack.smtp_sink import read_mail, set_rule
from devstack.stack import Stack
from tests.helpers import auth, token_for
from tests.integration.support import history, wait_until
from todos.core.settings import DEV_APP_API_TOKEN

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def address(user: str) -> str:
    return f"{user}@example.com"  # what tests.helpers' tokens carry as `email`


def soon(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def create(
    client: httpx.Client, user: str, headers: dict[str, str] | None = None, **body: Any
) -> dict[str, Any]:
    response = client.post(
        "/v1/tasks", json={"title": "Call the bank", **body}, headers=headers or auth(user)
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def remind_at(client: httpx.Client, user: str, at: datetime, title: str = "Call the bank") -> dict[str, Any]:
    """A task due in an hour with one reminder at `at`."""
    return create(
        client,
        user,
        title=title,
        due_at=(at + timedelta(hours=1)).isoformat(),
        reminders=[{"at": at.isoformat()}],
    )


def reminder_status(client: httpx.Client, user: str, task_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/tasks/{task_id}", headers=auth(user))
    assert response.status_code == 200, response.text
    return response.json()["reminder_status"]  # type: ignore[no-any-return]


def mail_to(stack: Stack, recipient: str, subject_part: str = "") -> list[dict[str, Any]]:
    return [
        m for m in read_mail(stack.smtp_dir) if recipient in m["rcpt_tos"] and subject_part in m["subject"]
    ]


def wait_for_mail(
    stack: Stack, recipient: str, subject_part: str = "", count: int = 1, timeout: float = 60
) -> list[dict[str, Any]]:
    return wait_until(  # type: ignore[no-any-return]
        lambda: (found := mail_to(stack, recipient, subject_part)) and len(found) >= count and found,
        timeout=timeout,
        what=f"{count} email(s) to {recipient} {subject_part!r}",
    )


def received(message: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(message["received_ts"], UTC)


def dapr_job(stack: Stack, name: str) -> dict[str, Any] | None:
    """The job as the scheduler holds it, through the sidecar's HTTP API."""
    response = httpx.get(f"{stack.dapr_http_url}/v1.0/jobs/{name}", timeout=10)
    if response.status_code != 200:
        return None
    return response.json()  # type: ignore[no-any-return]


def job_name(task: dict[str, Any], n: int = 0) -> str:
    return f"reminder-{task['id']}-{n}"


# ---- Must show --------------------------------------------------------------


def test_a_reminder_three_seconds_ahead_arrives_never_before_its_time(
    client: httpx.Client, stack: Stack
) -> None:
    user = new_user()
    at = soon(3)
    headers = {"Authorization": f"Bearer {token_for(user, zoneinfo='America/New_York')}"}
    task = create(
        client,
        user,
        headers,
        title="Pay rent",
        description="Transfer to the landlord's account",
        due_at="2027-01-15T14:00:00Z",
        reminders=[{"at": at.isoformat()}],
    )
    assert task["reminders"] == [{"before": None, "at": task["reminders"][0]["at"]}]  # shape unchanged
    assert task["reminder_status"][0]["status"] == "scheduled"

    (message,) = wait_for_mail(stack, address(user))
    assert received(message) >= at, f"arrived {(at - received(message)).total_seconds():.3f}s early"
    # The due time in the user's zone (the token's `zoneinfo` claim): 14:00Z is 09:00 EST.
    assert message["subject"] == "Reminder: Pay rent (due Friday 15 January 2027, 09:00 EST)"
    assert "America/New_York" in message["text"] and "Transfer to the landlord" in message["text"]
    assert "<h2>Reminder: Pay rent</h2>" in message["html"]
    assert message["message_id"] == f"<reminder.{task['id']}.0.1@localhost>"

    (status,) = wait_until(
        lambda: (s := reminder_status(client, user, task["id"]))[0]["status"] == "sent" and s,
        what="the reminder to be marked sent",
    )
    assert status["attempts"] == 1 and status["sent_at"] is not None


def test_completing_the_task_before_its_reminder_sends_nothing(client: httpx.Client, stack: Stack) -> None:
    user = new_user()
    task = remind_at(client, user, soon(3), title="Completed early")
    done = client.post(f"/v1/tasks/{task['id']}/complete", headers=auth(user))
    assert done.status_code == 200, done.text
    assert done.json()["reminder_status"][0]["status"] == "cancelled"

    remind_at(client, user, soon(5), title="Canary")
    wait_for_mail(stack, address(user), "Canary")
    assert mail_to(stack, address(user), "Completed early") == []
    assert dapr_job(stack, job_name(task)) is None


def test_moving_the_due_date_sends_one_email_at_the_new_time_only(client: httpx.Client, stack: Stack) -> None:
    user = new_user()
    first = soon(3)
    task = create(
        client,
        user,
        title="Dentist",
        due_at=(first + timedelta(minutes=10)).isoformat(),
        reminders=[{"before": "PT10M"}],
    )
    moved = first + timedelta(seconds=5)
    response = client.patch(
        f"/v1/tasks/{task['id']}",
        json={"due_at": (moved + timedelta(minutes=10)).isoformat()},
        headers=auth(user),
    )
    assert response.status_code == 200, response.text
    assert response.json()["reminder_status"][0]["scheduled_for"] == moved.isoformat().replace("+00:00", "Z")

    (message,) = wait_for_mail(stack, address(user), "Dentist")
    assert received(message) >= moved, "the reminder went out at the old time"
    assert message["message_id"] == f"<reminder.{task['id']}.0.2@localhost>"  # the second schedule

    remind_at(client, user, soon(2), title="Canary")
    wait_for_mail(stack, address(user), "Canary")
    assert len(mail_to(stack, address(user), "Dentist")) == 1


def test_deleting_the_task_sends_nothing(client: httpx.Client, stack: Stack) -> None:
    user = new_user()
    task = remind_at(client, user, soon(3), title="Deleted early")
    assert client.delete(f"/v1/tasks/{task['id']}", headers=auth(user)).status_code == 204
    assert dapr_job(stack, job_name(task)) is None

    remind_at(client, user, soon(5), title="Canary")
    wait_for_mail(stack, address(user), "Canary")
    assert mail_to(stack, address(user), "Deleted early") == []


def fire(client: httpx.Client, name: str, data: dict[str, Any]) -> httpx.Response:
    """What daprd does when the job fires."""
    return client.post(
        f"/job/{name}", content=json.dumps(data), headers={"dapr-api-token": DEV_APP_API_TOKEN}
    )


def test_the_job_firing_twice_sends_one_email(client: httpx.Client, stack: Stack) -> None:
    user = new_user()
    task = remind_at(client, user, soon(2), title="Twice")
    name = job_name(task)
    data = {"task_id": task["id"], "n": 0, "generation": 1}

    # Five extra firings race the scheduler's own for the same reminder.
    with ThreadPoolExecutor(5) as pool:
        outcomes = [r.json()["outcome"] for r in pool.map(lambda _: fire(client, name, data), range(5))]
    wait_for_mail(stack, address(user), "Twice")
    wait_until(
        lambda: reminder_status(client, user, task["id"])[0]["status"] == "sent", what="the reminder sent"
    )
    # At most one of them sent it (the scheduler's firing may have won).
    assert outcomes.count("sent") <= 1
    assert set(outcomes) <= {"sent", "in-progress", "already-sent"}

    # And the real scheduler fires the same job again after it was sent.
    armed = httpx.post(
        f"{stack.dapr_http_url}/v1.0/jobs/{name}",
        json={"dueTime": datetime.now(UTC).isoformat(), "data": data},
        timeout=10,
    )
    assert armed.status_code == 204, armed.text
    wait_until(lambda: dapr_job(stack, name) is None, what="the re-armed job to fire and be acknowledged")
    assert fire(client, name, data).json()["outcome"] == "already-sent"
    assert len(mail_to(stack, address(user), "Twice")) == 1


def test_smtp_refusing_the_first_three_attempts_delivers_on_a_later_one(
    client: httpx.Client, stack: Stack
) -> None:
    user = new_user()
    set_rule(stack.smtp_dir, address(user), 451, "4.3.2 Please try again later", times=3)
    task = remind_at(client, user, soon(1), title="Retry me")

    wait_for_mail(stack, address(user), "Retry me")
    (status,) = wait_until(
        lambda: (s := reminder_status(client, user, task["id"]))[0]["status"] == "sent" and s,
        what="the reminder marked sent",
    )
    assert status["attempts"] == 4  # three refusals, then accepted


def test_smtp_failing_permanently_marks_the_reminder_failed_with_the_reason(
    client: httpx.Client, stack: Stack
) -> None:
    user = new_user()
    set_rule(stack.smtp_dir, address(user), 550, "5.1.1 Mailbox does not exist")
    task = remind_at(client, user, soon(1), title="Bounce")

    (status,) = wait_until(
        lambda: (s := reminder_status(client, user, task["id"]))[0]["status"] == "failed" and s,
        what="the reminder marked failed",
    )
    assert "550" in status["failure_reason"] and "5.1.1 Mailbox does not exist" in status["failure_reason"]
    assert status["attempts"] == 1  # a 5xx is not retried
    assert mail_to(stack, address(user)) == []
    assert metric(client, 'todo_reminders_failed_total{reason="permanent"}') >= 1


def test_a_series_reminder_sent_and_one_failed_are_in_their_tasks_histories(
    client: httpx.Client, stack: Stack
) -> None:
    sent_to, failed_to = new_user(), new_user()
    set_rule(stack.smtp_dir, address(failed_to), 550, "5.1.1 Mailbox does not exist")
    tasks = {
        user: create(
            client,
            user,
            title="Stretch",
            due_at=soon(60).isoformat(),
            reminders=[{"before": "PT58S"}],
            recurrence={"rule": "daily", "timezone": "UTC"},
        )
        for user in (sent_to, failed_to)
    }
    with httpx.Client(base_url=stack.audit_url, timeout=30) as audit:
        for user, outcome in ((sent_to, "reminder.sent"), (failed_to, "reminder.failed")):
            task = tasks[user]
            events = wait_until(
                partial(history_ending_in, audit, user, task["id"], outcome),
                what=f"{outcome} in the task's history",
            )
            types = [event["event_type"] for event in events]
            assert types.index("reminder.scheduled") < types.index(outcome)
            assert {event["series_id"] for event in events} == {task["series_id"]}


def history_ending_in(audit: httpx.Client, user: str, task_id: str, event_type: str) -> list[dict[str, Any]]:
    found = history(audit, user, task_id)
    return found if found and found[-1]["event_type"] == event_type else []


def metric(client: httpx.Client, series: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{series} is not exposed")


def test_metrics_count_sent_reminders_and_their_lateness(client: httpx.Client, stack: Stack) -> None:
    sent, observed = (
        metric(client, "todo_reminders_sent_total"),
        metric(client, "todo_reminder_lateness_seconds_count"),
    )
    user = new_user()
    remind_at(client, user, soon(1), title="Counted")
    wait_for_mail(stack, address(user), "Counted")
    wait_until(lambda: metric(client, "todo_reminders_sent_total") > sent, what="the sent counter to move")
    assert metric(client, "todo_reminder_lateness_seconds_count") > observed


@pytest.mark.parametrize("headers", [{}, {"dapr-api-token": "not-the-token"}], ids=["missing", "wrong"])
def test_the_callback_refuses_calls_without_the_app_api_token(
    client: httpx.Client, headers: dict[str, str]
) -> None:
    response = client.post(f"/job/reminder-{uuid.uuid4()}-0", content=b"{}", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert "dapr-api-token" in response.json()["detail"]


# ---- around the must-shows -------------------------------------------------------


def test_the_callback_answers_unknown_jobs_and_bad_data_clearly(client: httpx.Client) -> None:
    unknown = fire(client, "nightly-cleanup", {})
    assert unknown.status_code == 404  # Dapr does not retry a 404
    missing = uuid.uuid4()
    gone = fire(client, f"reminder-{missing}-0", {"task_id": str(missing), "n": 0, "generation": 1})
    assert gone.status_code == 200 and gone.json()["outcome"] == "gone"
    other = fire(client, f"reminder-{missing}-0", {"task_id": str(missing), "n": 1, "generation": 1})
    assert other.status_code == 422 and "another reminder" in other.json()["detail"]
    bad = client.post(
        f"/job/reminder-{uuid.uuid4()}-0", content=b"not json", headers={"dapr-api-token": DEV_APP_API_TOKEN}
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body"


def test_a_before_reminder_needs_a_due_date(client: httpx.Client) -> None:
    user = new_user()
    response = client.post(
        "/v1/tasks", json={"title": "x", "reminders": [{"before": "PT5M"}]}, headers=auth(user)
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "reminders.0.before"

    task = create(client, user, due_at="2027-01-01T09:00:00Z", reminders=[{"before": "PT5M"}])
    cleared = client.patch(f"/v1/tasks/{task['id']}", json={"due_at": None}, headers=auth(user))
    assert cleared.status_code == 422 and cleared.json()["errors"][0]["field"] == "due_at"


def test_a_past_reminder_fires_at_once_while_the_task_is_still_due_and_is_skipped_after(
    client: httpx.Client, stack: Stack
) -> None:
    user = new_user()
    late = create(
        client,
        user,
        title="Still due",
        due_at=soon(3600).isoformat(),
        reminders=[{"at": soon(-600).isoformat()}],
    )
    wait_for_mail(stack, address(user), "Still due")
    overdue = create(
        client,
        user,
        title="Already overdue",
        due_at=soon(-60).isoformat(),
        reminders=[{"before": "PT5M"}],
    )
    assert overdue["reminder_status"][0]["status"] == "skipped"
    assert "passed" in overdue["reminder_status"][0]["failure_reason"]
    assert dapr_job(stack, job_name(overdue)) is None
    assert reminder_status(client, user, late["id"])[0]["status"] in ("sending", "sent")


def test_snooze_rearms_the_most_recently_sent_reminder(client: httpx.Client, stack: Stack) -> None:
    user = new_user()
    unsent = remind_at(client, user, soon(3600), title="Not yet")
    not_yet = client.post(f"/v1/reminders/{unsent['id']}/snooze", json={"minutes": 10}, headers=auth(user))
    assert not_yet.status_code == 409 and "sent yet" in not_yet.json()["detail"]

    task = remind_at(client, user, soon(1), title="Snooze me")
    path = f"/v1/reminders/{task['id']}/snooze"
    wait_until(
        lambda: reminder_status(client, user, task["id"])[0]["status"] == "sent", what="the reminder sent"
    )

    for minutes in (0, 1441, "soon"):
        invalid = client.post(path, json={"minutes": minutes}, headers=auth(user))
        assert invalid.status_code == 422 and invalid.json()["errors"][0]["field"] == "minutes"
    assert client.post(path, json={"minutes": 10}, headers=auth(new_user())).status_code == 404

    before = datetime.now(UTC)
    snoozed = client.post(path, json={"minutes": 10}, headers=auth(user))
    assert snoozed.status_code == 200, snoozed.text
    body = snoozed.json()
    assert body["status"] == "scheduled" and body["index"] == 0
    due = datetime.fromisoformat(body["scheduled_for"])
    assert before + timedelta(minutes=10) <= due <= datetime.now(UTC) + timedelta(minutes=10)
    job = wait_until(lambda: dapr_job(stack, job_name(task)), what="the snoozed job in the scheduler")
    assert datetime.fromisoformat(job["dueTime"]) == due
    assert job["data"]["value"]["generation"] == 2


def test_each_new_occurrence_of_a_series_gets_its_reminder_jobs(client: httpx.Client, stack: Stack) -> None:
    user = new_user()
    due = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    first = create(
        client,
        user,
        title="Water the plants",
        due_at=due.isoformat(),
        reminders=[{"before": "PT30M"}],
        recurrence={"rule": "daily", "timezone": "Europe/Paris"},
    )
    assert dapr_job(stack, job_name(first)) is not None
    assert client.post(f"/v1/tasks/{first['id']}/complete", headers=auth(user)).status_code == 200
    assert dapr_job(stack, job_name(first)) is None

    def second() -> dict[str, Any] | None:
        items = client.get("/v1/tasks", params={"series_id": first["series_id"]}, headers=auth(user)).json()
        return next((t for t in items["items"] if t["occurrence_index"] == 2), None)

    task = wait_until(second, timeout=60, what="occurrence #2")
    job = wait_until(lambda: dapr_job(stack, job_name(task)), what="occurrence #2's reminder job")
    expected = datetime.fromisoformat(task["due_at"]) - timedelta(minutes=30)
    assert datetime.fromisoformat(job["dueTime"]) == expected
    assert wait_until(
        lambda: reminder_status(client, user, task["id"])[0]["status"] == "scheduled", what="its row"
    )
