"""The reminder rules (README "Reminders") on the real database: each reminder
is a row and a Dapr job (FakeJobs) armed for its time; changes re-arm what
they move and cancel what they close; a firing of the job (the `POST
/job/{name}` callback, services.delivery) claims the row once, sends one email
through a fake SMTP server and records the outcome and its event; snooze
sends the last one again."""

from __future__ import annotations

import uuid
from datetime import timedelta
from email.message import Message
from typing import Any
from zoneinfo import ZoneInfo

import aiosmtplib
import pytest
from sqlmodel import select

from api.deps import Services
from tests.service.conftest import Clock, FakeJobs, FakeWorkflows
from tests.service.support import create, later, outbox, run_generation
from todos.core.errors import Conflict
from todos.core.fields import rfc3339
from todos.core.settings import Settings
from todos.core.users import User
from todos.events import schema as events
from todos.reminders.ledger import NotYet, ReminderClaim
from todos.reminders.mailer import Client, Mailer
from todos.reminders.models import Reminder, ReminderStatus
from todos.reminders.rules import JobData, job_name
from todos.tasks.models import Task, TaskUpdate

pytestmark = [pytest.mark.service, pytest.mark.timeout(120)]


class Smtp:
    """The SMTP server the mailer's connections reach: keeps each message it
    accepts, or answers every one with `refusal`."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Message]] = []
        self.refusal: Exception | None = None

    async def connect(self) -> Client:
        return _Connection(self)


class _Connection:
    def __init__(self, server: Smtp) -> None:
        self.server = server

    async def send_message(self, message: Message, *, sender: str, recipients: list[str]) -> Any:
        if self.server.refusal is not None:
            raise self.server.refusal
        self.server.sent += [(recipient, message) for recipient in recipients]

    def close(self) -> None:
        pass


@pytest.fixture
def smtp() -> Smtp:
    return Smtp()


@pytest.fixture
def mailer(settings: Settings, clock: Clock, smtp: Smtp) -> Mailer:
    """The services' mailer (conftest's `services`), connected to `smtp`."""
    return Mailer(settings, connect=smtp.connect, clock=clock)


def armed(services: Services, jobs: FakeJobs) -> dict[str, tuple[Any, JobData]]:
    """The jobs armed once the background job calls are made: name -> (time, data)."""
    services.job_calls.close()
    return {name: (due, JobData.from_bytes(data)) for name, (due, data) in jobs.armed.items()}


def row(services: Services, task_id: uuid.UUID, n: int = 0) -> Reminder:
    with services.database.session() as session:
        found = session.exec(select(Reminder).where(Reminder.task_id == task_id, Reminder.n == n)).one()
        return found


async def fire(services: Services, jobs: FakeJobs, task_id: uuid.UUID, n: int = 0) -> str:
    """daprd calling POST /job/{name} with the data the job was armed with."""
    services.job_calls.close()
    name = job_name(task_id, n)
    return await services.delivery.fire(name, jobs.armed[name][1])


def reminder_events(services: Services) -> list[tuple[str, dict[str, Any]]]:
    return [
        (row.body["event_type"], row.body["payload"])
        for row in outbox(services.database)
        if row.topic == events.REMINDERS
    ]


# ---- when a reminder fires --------------------------------------------------------


def test_each_reminder_becomes_a_dapr_job_at_its_time_named_for_its_task_and_position(
    services: Services, jobs: FakeJobs, user: User, clock: Clock
) -> None:
    due = clock.now + timedelta(days=1)
    at = clock.now + timedelta(hours=2)
    task = create(services, user, due_at=rfc3339(due), reminders=[{"before": "PT15M"}, {"at": rfc3339(at)}])
    assert armed(services, jobs) == {
        job_name(task.id, 0): (due - timedelta(minutes=15), JobData(task.id, 0, 1)),
        job_name(task.id, 1): (at, JobData(task.id, 1, 1)),
    }
    first = row(services, task.id, 0)
    assert first.status == ReminderStatus.scheduled and first.scheduled_for == due - timedelta(minutes=15)
    assert first.job_scheduled_at == clock.now, "the job Dapr confirmed is not recorded as armed"


def test_a_reminder_set_after_its_time_fires_at_once_while_the_task_is_still_due(
    services: Services, jobs: FakeJobs, user: User, clock: Clock
) -> None:
    due = clock.now + timedelta(minutes=10)
    task = create(services, user, due_at=rfc3339(due), reminders=[{"before": "PT1H"}])
    assert armed(services, jobs)[job_name(task.id, 0)][0] == clock.now
    (shown,) = task.reminder_status
    assert (shown.status, shown.remind_at, shown.scheduled_for) == (
        "scheduled",
        due - timedelta(hours=1),
        clock.now,
    )


def test_a_reminder_set_after_its_time_for_a_task_already_overdue_is_skipped(
    services: Services, jobs: FakeJobs, user: User, clock: Clock
) -> None:
    task = create(services, user, due_at=later(clock, hours=-1), reminders=[{"before": "PT15M"}])
    (shown,) = task.reminder_status
    assert shown.status == ReminderStatus.skipped and shown.failure_reason
    assert armed(services, jobs) == {} and reminder_events(services) == []


def test_moving_the_due_time_rearms_a_before_reminder_and_leaves_an_unchanged_one_as_it_is(
    services: Services, jobs: FakeJobs, user: User, clock: Clock
) -> None:
    due = clock.now + timedelta(days=1)
    at = clock.now + timedelta(hours=2)
    task = create(services, user, due_at=rfc3339(due), reminders=[{"before": "PT15M"}, {"at": rfc3339(at)}])
    armed(services, jobs)
    jobs.calls.clear()
    moved = due + timedelta(hours=3)
    services.tasks.update_task(user, task.id, TaskUpdate(due_at=moved))
    now_armed = armed(services, jobs)
    assert now_armed[job_name(task.id, 0)] == (moved - timedelta(minutes=15), JobData(task.id, 0, 2))
    assert now_armed[job_name(task.id, 1)] == (at, JobData(task.id, 1, 1))
    assert jobs.calls == [("schedule", job_name(task.id, 0))], "the unchanged reminder was re-armed"
    assert row(services, task.id, 1).generation == 1


async def test_a_sent_reminder_whose_time_did_not_change_stays_sent(
    services: Services, jobs: FakeJobs, user: User, clock: Clock
) -> None:
    task = create(services, user, due_at=later(clock, hours=1), reminders=[{"before": "PT15M"}])
    clock.advance(minutes=45)
    assert await fire(services, jobs, task.id) == "sent"
    updated = services.tasks.update_task(
        user,
        task.id,
        TaskUpdate.model_validate(
            {"title": "Call the bank now", "reminders": [{"before": "PT15M"}, {"before": "PT5M"}]}
        ),
    )
    assert [shown.status for shown in updated.reminder_status] == ["sent", "scheduled"]
    assert row(services, task.id, 0).generation == 1


# ---- what cancels a reminder ------------------------------------------------------


@pytest.mark.parametrize("close", ["complete", "skip", "delete"])
async def test_completing_skipping_or_deleting_the_task_deletes_its_scheduled_jobs(
    services: Services, jobs: FakeJobs, smtp: Smtp, user: User, clock: Clock, close: str
) -> None:
    task = create(
        services,
        user,
        due_at=later(clock, days=1),
        recurrence={"rule": "daily"},
        reminders=[{"before": "PT15M"}, {"before": "PT1H"}],
    )
    names = {job_name(task.id, 0), job_name(task.id, 1)}
    assert set(armed(services, jobs)) == names
    data = dict(jobs.armed)
    if close == "complete":
        services.tasks.complete_task(user, task.id)
    elif close == "skip":
        services.series.skip_occurrence(user, task.id)
    else:
        services.tasks.delete_task(user, task.id)
    assert armed(services, jobs) == {}
    assert {name for call, name in jobs.calls if call == "delete"} == names
    if close != "delete":
        assert {row(services, task.id, n).status for n in (0, 1)} == {ReminderStatus.cancelled}
    # A firing Dapr had already started (the delete came too late) sends nothing.
    clock.advance(days=1)
    name = job_name(task.id, 0)
    outcome = await services.delivery.fire(name, data[name][1])
    assert outcome == ("gone" if close == "delete" else "task-closed") and smtp.sent == []


# ---- a firing: claim, lease, outcome ------------------------------------------------


def test_a_firing_claims_the_reminder_once_and_a_second_finds_it_claimed_then_sent(
    services: Services, user: User, clock: Clock
) -> None:
    task = create(services, user, due_at=later(clock, hours=1), reminders=[{"before": "PT15M"}])
    clock.advance(minutes=45)
    data = JobData(task.id, 0, 1)
    claim = services.reminders.claim(data)
    assert isinstance(claim, ReminderClaim) and claim.email.recipient == user.email
    claimed = row(services, task.id)
    assert claimed.status == ReminderStatus.sending and claimed.lease_until is not None
    assert claimed.lease_until > clock.now
    assert services.reminders.claim(data) == "in-progress"
    services.reminders.mark_sent(claim, clock.now, attempts=1)
    sent = row(services, task.id)
    assert (sent.status, sent.sent_at, sent.attempts, sent.claim_token) == ("sent", clock.now, 1, None)
    assert services.reminders.claim(data) == "already-sent"
    assert [event for event, _ in reminder_events(services)] == [
        events.REMINDER_SCHEDULED,
        events.REMINDER_SENT,
    ]


def test_a_claim_whose_lease_ran_out_is_taken_over_and_the_first_can_no_longer_close_it(
    services: Services, user: User, clock: Clock
) -> None:
    """The app died while sending: a later firing sends it again (the same
    Message-ID), and the dead claim's late answer changes nothing."""
    task = create(services, user, due_at=later(clock, hours=1), reminders=[{"before": "PT15M"}])
    clock.advance(minutes=45)
    data = JobData(task.id, 0, 1)
    first = services.reminders.claim(data)
    assert isinstance(first, ReminderClaim)
    lease_until = row(services, task.id).lease_until
    assert lease_until is not None
    clock.now = lease_until + timedelta(seconds=1)
    second = services.reminders.claim(data)
    assert isinstance(second, ReminderClaim) and second.token != first.token
    assert second.email.message_id == first.email.message_id
    services.reminders.mark_failed(first, "421 too late", attempts=1, permanent=False)
    assert row(services, task.id).status == ReminderStatus.sending, "an expired claim closed the reminder"
    services.reminders.mark_sent(second, clock.now, attempts=1)
    assert row(services, task.id).status == ReminderStatus.sent


async def test_a_claim_abandoned_while_its_task_was_completed_is_closed_not_sent_again(
    services: Services, jobs: FakeJobs, smtp: Smtp, user: User, clock: Clock
) -> None:
    """Completing leaves a reminder being sent to finish; if that send died,
    the next firing after its lease finds the task done and sends nothing."""
    task = create(services, user, due_at=later(clock, hours=1), reminders=[{"before": "PT15M"}])
    clock.advance(minutes=45)
    claim = services.reminders.claim(JobData(task.id, 0, 1))
    assert isinstance(claim, ReminderClaim)
    services.tasks.complete_task(user, task.id)
    assert row(services, task.id).status == ReminderStatus.sending
    clock.advance(hours=1)
    assert await fire(services, jobs, task.id) == "task-closed"
    assert row(services, task.id).status == ReminderStatus.cancelled and smtp.sent == []


async def test_a_firing_of_an_older_generation_is_superseded(
    services: Services, jobs: FakeJobs, smtp: Smtp, user: User, clock: Clock
) -> None:
    """The due time moved earlier: when the old job fires, both times have
    passed, and only the new job's firing sends."""
    task = create(services, user, due_at=later(clock, hours=1), reminders=[{"before": "PT15M"}])
    (_, old) = armed(services, jobs)[job_name(task.id, 0)]
    services.tasks.update_task(user, task.id, TaskUpdate.model_validate({"due_at": later(clock, minutes=30)}))
    (_, new) = armed(services, jobs)[job_name(task.id, 0)]
    assert new.generation == old.generation + 1
    clock.advance(minutes=50)
    assert await services.delivery.fire(job_name(task.id, 0), old.to_bytes()) == "superseded"
    assert row(services, task.id).status == ReminderStatus.scheduled and smtp.sent == []
    assert await fire(services, jobs, task.id) == "sent" and len(smtp.sent) == 1


def test_a_firing_before_the_reminders_time_is_told_how_long_to_wait(
    services: Services, user: User, clock: Clock
) -> None:
    task = create(services, user, due_at=later(clock, hours=1), reminders=[{"before": "PT15M"}])
    clock.advance(minutes=44)
    assert services.reminders.claim(JobData(task.id, 0, 1)) == NotYet(60.0)
    assert row(services, task.id).status == ReminderStatus.scheduled


async def test_a_fired_job_sends_one_email_and_records_it_sent(
    services: Services, jobs: FakeJobs, smtp: Smtp, user: User, clock: Clock
) -> None:
    task = create(services, user, due_at=later(clock, hours=1), reminders=[{"before": "PT15M"}])
    clock.advance(minutes=45)
    assert await fire(services, jobs, task.id) == "sent"
    assert await fire(services, jobs, task.id) == "already-sent"
    ((recipient, message),) = smtp.sent
    assert recipient == user.email and message["Subject"].startswith("Reminder: Call the bank (due ")
    shown = services.tasks.get_task(user, task.id).reminder_status[0]
    assert (shown.status, shown.sent_at, shown.attempts) == ("sent", clock.now, 1)
    assert reminder_events(services)[-1] == (
        events.REMINDER_SENT,
        {"remind_at": rfc3339(clock.now), "reminder": {"before": "PT15M"}},  # due - 15 min: now
    )


async def test_a_permanent_smtp_refusal_marks_the_reminder_failed_with_the_servers_reply(
    services: Services, jobs: FakeJobs, smtp: Smtp, user: User, clock: Clock
) -> None:
    task = create(services, user, due_at=later(clock, hours=1), reminders=[{"before": "PT15M"}])
    clock.advance(minutes=45)
    smtp.refusal = aiosmtplib.SMTPResponseException(550, "5.1.1 no such mailbox")
    assert await fire(services, jobs, task.id) == "failed"
    failed = row(services, task.id)
    assert failed.status == ReminderStatus.failed and failed.failure_reason == "550 5.1.1 no such mailbox"
    assert failed.attempts == 1 and failed.sent_at is None
    event, payload = reminder_events(services)[-1]
    assert event == events.REMINDER_FAILED and payload["error"] == "550 5.1.1 no such mailbox"
    assert await fire(services, jobs, task.id) == "already-failed"


def test_a_reminder_without_an_email_address_fails_with_the_reason(
    services: Services, jobs: FakeJobs, user_id: str, clock: Clock
) -> None:
    """The token that created the task had no `email` claim: nowhere to send it."""
    task = create(services, User(id=user_id), due_at=later(clock, hours=1), reminders=[{"before": "PT15M"}])
    (shown,) = task.reminder_status
    assert shown.status == ReminderStatus.failed and "email" in (shown.failure_reason or "")
    assert armed(services, jobs) == {}
    ((event, payload),) = reminder_events(services)
    assert event == events.REMINDER_FAILED and payload["error"] == shown.failure_reason


def test_a_reminder_that_failed_for_want_of_an_address_is_armed_once_the_task_has_one(
    services: Services, jobs: FakeJobs, user_id: str, clock: Clock
) -> None:
    """An update from a token that does carry an `email` gives the task its address: the
    reminder that had nowhere to go is armed then, not left failed for good."""
    task = create(services, User(id=user_id), due_at=later(clock, hours=1), reminders=[{"before": "PT15M"}])
    updated = services.tasks.update_task(
        User(id=user_id, email=f"{user_id}@example.com"), task.id, TaskUpdate(title="With an address")
    )
    (shown,) = updated.reminder_status
    assert shown.status == ReminderStatus.scheduled and shown.failure_reason is None
    assert job_name(task.id, 0) in armed(services, jobs)


# ---- snooze ---------------------------------------------------------------------------


async def test_snoozing_sends_the_last_sent_reminder_again_minutes_from_now(
    services: Services, jobs: FakeJobs, smtp: Smtp, user: User, clock: Clock
) -> None:
    task = create(services, user, due_at=later(clock, hours=1), reminders=[{"before": "PT15M"}])
    clock.advance(minutes=45)
    await fire(services, jobs, task.id)
    snoozed = services.reminders.snooze(user, task.id, 10)
    assert snoozed.status == ReminderStatus.scheduled and snoozed.scheduled_for == clock.now + timedelta(
        minutes=10
    )
    assert armed(services, jobs)[job_name(task.id, 0)] == (
        clock.now + timedelta(minutes=10),
        JobData(task.id, 0, 2),
    )
    clock.advance(minutes=10)
    assert await fire(services, jobs, task.id) == "sent"
    first, second = (message["Message-ID"] for _, message in smtp.sent)
    assert first != second, "the snoozed copy reads as a re-send of the first email"


def test_snoozing_is_refused_while_no_reminder_has_been_sent(
    services: Services, jobs: FakeJobs, user: User, clock: Clock
) -> None:
    task = create(services, user, due_at=later(clock, hours=1), reminders=[{"before": "PT15M"}])
    armed(services, jobs)
    jobs.calls.clear()
    with pytest.raises(Conflict) as refused:
        services.reminders.snooze(user, task.id, 10)
    assert refused.value.status == 409 and refused.value.field == "task_id"
    assert row(services, task.id).generation == 1 and armed(services, jobs) and jobs.calls == []


# ---- series and the email ---------------------------------------------------------------


def test_a_new_occurrence_gets_jobs_for_the_before_offsets_it_copies(
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
        reminders=[{"before": "PT15M"}, {"at": later(clock, hours=2)}],
    )
    services.tasks.complete_task(user, first.id)
    (state,) = workflows.started
    run_generation(monkeypatch, services.steps, state, clock.now)
    with services.database.session() as session:
        second = session.exec(select(Task).where(Task.occurrence_index == 2)).one()
    assert second.due_at is not None
    assert armed(services, jobs) == {
        job_name(second.id, 0): (second.due_at - timedelta(minutes=15), JobData(second.id, 0, 1))
    }


async def test_the_email_shows_the_due_time_in_the_series_zone_else_in_the_tokens(
    services: Services, jobs: FakeJobs, smtp: Smtp, user_id: str, clock: Clock
) -> None:
    parisian = User(id=user_id, email=f"{user_id}@example.com", timezone="Europe/Paris")
    due = clock.now + timedelta(hours=1)
    one_off = create(services, parisian, due_at=rfc3339(due), reminders=[{"before": "PT15M"}])
    recurring = create(
        services,
        parisian,
        title="Stand-up notes",
        due_at=rfc3339(due),
        reminders=[{"before": "PT15M"}],
        recurrence={"rule": "daily", "timezone": "America/New_York"},
    )
    clock.advance(minutes=45)
    assert await fire(services, jobs, one_off.id) == await fire(services, jobs, recurring.id) == "sent"
    subjects = [message["Subject"] for _, message in smtp.sent]
    for subject, zone in zip(subjects, ("Europe/Paris", "America/New_York"), strict=True):
        local = due.astimezone(ZoneInfo(zone))
        assert subject.endswith(f"{local:%H:%M} {local.tzname()})"), (subject, zone)
    plain = smtp.sent[0][1].get_payload()[0].get_payload(decode=True).decode()
    assert "due in 15 minutes" in plain, plain
