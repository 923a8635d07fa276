"""A job firing, sequenced around a fake ledger and a scripted SMTP send:
what is claimed, sent and recorded, and what is refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.message import Message
from typing import Any

import aiosmtplib
import pytest

from todos.core.errors import InvalidInput, NotFound
from todos.core.settings import Settings
from todos.reminders import rules as reminders
from todos.reminders.delivery import MAX_EARLY_WAIT_SECONDS, ReminderDelivery
from todos.reminders.ledger import NotYet, ReminderClaim
from todos.reminders.mailer import Mailer

pytestmark = pytest.mark.unit

TASK = uuid.uuid4()
NAME = reminders.job_name(TASK, 0)
DATA = reminders.JobData(TASK, 0, 1)
SCHEDULED = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CLAIM = ReminderClaim(
    reminder_id=uuid.uuid4(),
    token=uuid.uuid4(),
    scheduled_for=SCHEDULED,
    email=reminders.ReminderEmail(
        recipient="alice@example.com",
        title="Pay rent",
        description=None,
        due_at=None,
        zone=reminders.zone_for("UTC"),
        message_id="<m@x>",
    ),
)


class FakeService:
    def __init__(self, *claims: ReminderClaim | NotYet | str) -> None:
        self.settings = Settings(env="dev")
        self.claims = list(claims)
        self.sent: list[tuple[Any, ...]] = []
        self.failed: list[tuple[Any, ...]] = []

    def claim(self, data: reminders.JobData) -> ReminderClaim | NotYet | str:
        assert data == DATA
        return self.claims.pop(0)

    def mark_sent(self, claim: ReminderClaim, sent_at: datetime, attempts: int) -> None:
        self.sent.append((claim, attempts))

    def mark_failed(self, claim: ReminderClaim, reason: str, attempts: int, *, permanent: bool) -> None:
        self.failed.append((claim, reason, attempts, permanent))


def delivery(service: FakeService, *errors: Exception) -> tuple[ReminderDelivery, list[Message], list[float]]:
    messages: list[Message] = []
    waits: list[float] = []
    script = list(errors)

    class Client:
        async def send_message(self, message: Message, **kwargs: Any) -> None:
            messages.append(message)
            if script:
                raise script.pop(0)

        def close(self) -> None:
            pass

    async def connect() -> Client:
        return Client()

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    mailer = Mailer(service.settings, connect=connect, sleep=sleep)
    return ReminderDelivery(service, mailer, sleep=sleep), messages, waits  # type: ignore[arg-type]


async def test_a_claimed_reminder_is_sent_once_and_marked_sent() -> None:
    service = FakeService(CLAIM)
    runner, messages, _ = delivery(service)
    assert await runner.fire(NAME, DATA.to_bytes()) == "sent"
    assert [m["Subject"] for m in messages] == ["Reminder: Pay rent"]
    assert service.sent == [(CLAIM, 1)] and service.failed == []


async def test_nothing_to_do_sends_nothing() -> None:
    service = FakeService("already-sent")
    runner, messages, _ = delivery(service)
    assert await runner.fire(NAME, DATA.to_bytes()) == "already-sent"
    assert messages == [] and service.sent == []


async def test_an_early_firing_waits_for_the_reminders_time_before_claiming() -> None:
    service = FakeService(NotYet(0.4), NotYet(120), CLAIM)
    runner, messages, waits = delivery(service)
    assert await runner.fire(NAME, DATA.to_bytes()) == "sent"
    assert waits == [0.4, MAX_EARLY_WAIT_SECONDS] and len(messages) == 1


async def test_a_permanent_smtp_failure_marks_the_reminder_failed_with_the_reply() -> None:
    service = FakeService(CLAIM)
    bounce = aiosmtplib.SMTPRecipientsRefused(
        [aiosmtplib.SMTPRecipientRefused(550, "5.1.1 unknown", "alice@example.com")]
    )
    runner, _, _ = delivery(service, bounce)
    assert await runner.fire(NAME, DATA.to_bytes()) == "failed"
    assert service.failed == [(CLAIM, "550 5.1.1 unknown (alice@example.com)", 1, True)]


async def test_jobs_that_are_not_reminders_and_foreign_data_are_refused() -> None:
    runner, _, _ = delivery(FakeService())
    with pytest.raises(NotFound):
        await runner.fire("nightly-cleanup", b"{}")
    with pytest.raises(InvalidInput, match="not reminder job data"):
        await runner.fire(NAME, b"garbage")
    with pytest.raises(InvalidInput, match="another reminder"):
        await runner.fire(NAME, reminders.JobData(TASK, 1, 1).to_bytes())


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            HeaderParseError("header value appears to contain an embedded header: 'Milk: 2L'"),
            "HeaderParseError: header value appears to contain an embedded header: 'Milk: 2L'",
        ),
        (  # aiosmtplib's refusal of an address that would break the RCPT command
            ValueError("Address 'a@x\\r\\nRCPT TO:<b@y>' is not permitted in an SMTP mailbox"),
            "ValueError: Address 'a@x\\r\\nRCPT TO:<b@y>' is not permitted in an SMTP mailbox",
        ),
    ],
)
async def test_an_error_outside_smtp_fails_the_reminder_for_good_instead_of_the_callback(
    error: Exception, reason: str
) -> None:
    # Raised again by every retry: answering 500 made Dapr and the sweeper repeat it for ever.
    service = FakeService(CLAIM)
    runner, messages, waits = delivery(service, error)
    assert await runner.fire(NAME, DATA.to_bytes()) == "failed"
    assert service.failed == [(CLAIM, reason, 1, True)] and len(messages) == 1 and waits == []
