"""Reminder rules without I/O: job names and data, when a reminder fires,
and what its email says."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage, Message

import pytest

from todos.reminders import rules as reminders
from todos.reminders.models import ReminderStatus

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TASK = uuid.UUID("3f1c2a9e-0000-4000-8000-000000000001")


def test_job_names_are_derived_from_task_and_position_and_parse_back() -> None:
    name = reminders.job_name(TASK, 3)
    assert name == f"reminder-{TASK}-3"
    assert reminders.parse_job_name(name) == (TASK, 3)


@pytest.mark.parametrize(
    "name",
    ["nightly-cleanup", "reminder-", "reminder-not-a-uuid-0", f"reminder-{TASK}-x", f"reminder-{TASK}"],
)
def test_other_job_names_are_not_reminders(name: str) -> None:
    assert reminders.parse_job_name(name) is None


def test_job_data_round_trips_and_accepts_what_dapr_posts_back() -> None:
    data = reminders.JobData(TASK, 2, 5)
    assert reminders.JobData.from_bytes(data.to_bytes()) == data
    # daprd re-encodes the google.protobuf.Value: other key order, no spaces.
    assert reminders.JobData.from_bytes(f'{{"generation":5,"n":2,"task_id":"{TASK}"}}'.encode()) == data


@pytest.mark.parametrize(
    "raw", [b"", b"not json", b"[]", b'{"task_id": "x", "n": 0, "generation": 1}', b"{}"]
)
def test_foreign_job_data_is_refused(raw: bytes) -> None:
    with pytest.raises(ValueError, match="reminder job data"):
        reminders.JobData.from_bytes(raw)


def plan(
    spec: dict[str, str], due: datetime | None, recipient: str | None = "a@example.com"
) -> reminders.Plan:
    return reminders.plan(spec, due, NOW, recipient)


def test_before_counts_back_from_the_due_time() -> None:
    due = NOW + timedelta(hours=2)
    result = plan({"before": "PT15M"}, due)
    assert result == reminders.Plan(
        due - timedelta(minutes=15), ReminderStatus.scheduled, fire_at=due - timedelta(minutes=15)
    )


def test_at_fires_at_its_own_time_with_or_without_a_due_time() -> None:
    at = NOW + timedelta(minutes=5)
    assert plan({"at": at.isoformat()}, None).fire_at == at
    assert plan({"at": at.isoformat()}, NOW + timedelta(days=1)).fire_at == at


def test_a_passed_reminder_fires_at_once_while_the_task_is_still_due() -> None:
    result = plan({"before": "P1D"}, NOW + timedelta(hours=1))
    assert result.status == ReminderStatus.scheduled
    assert result.fire_at == NOW
    assert result.remind_at == NOW - timedelta(hours=23)


@pytest.mark.parametrize(
    ("spec", "due"),
    [
        ({"before": "PT5M"}, NOW - timedelta(minutes=1)),  # the task is overdue already
        ({"at": (NOW - timedelta(minutes=1)).isoformat()}, None),  # no due time to still be ahead of
    ],
)
def test_a_passed_reminder_of_an_overdue_task_is_skipped(spec: dict[str, str], due: datetime | None) -> None:
    result = plan(spec, due)
    assert result.status == ReminderStatus.skipped and result.fire_at is None
    assert result.reason is not None and "passed" in result.reason


def test_without_an_address_the_reminder_fails_with_the_reason() -> None:
    result = plan({"before": "PT5M"}, NOW + timedelta(hours=1), recipient=None)
    assert result.status == ReminderStatus.failed and result.fire_at is None
    assert result.reason is not None and "email" in result.reason


def test_before_without_a_due_time_never_fires() -> None:
    result = plan({"before": "PT5M"}, None)
    assert result.status == ReminderStatus.skipped and result.remind_at is None


def test_the_zone_is_the_first_known_candidate() -> None:
    assert reminders.zone_for(None, "Not/AZone", "Europe/Paris", "UTC").key == "Europe/Paris"
    assert reminders.zone_for(None, "").key == "UTC"


def parse(message: Message) -> EmailMessage:
    """The message as a mail client reads it off the wire."""
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body((subtype,))
    assert body is not None, f"no text/{subtype} part"
    return str(body.get_content())


def email(**changes: object) -> reminders.ReminderEmail:
    values: dict[str, object] = {
        "recipient": "alice@example.com",
        "title": "Pay <rent>",
        "description": "Landlord's account",
        "due_at": datetime(2027, 7, 1, 13, 0, tzinfo=UTC),
        "zone": reminders.zone_for("America/New_York"),
        "message_id": reminders.message_id(TASK, 0, 1, "Todo <reminders@todo.example>"),
    }
    values.update(changes)
    return reminders.ReminderEmail(**values)  # type: ignore[arg-type]


def test_the_email_names_the_task_and_its_due_time_in_the_users_zone() -> None:
    sent_at = datetime(2027, 7, 1, 12, 45, tzinfo=UTC)
    message = parse(email().build("Todo <reminders@todo.example>", sent_at))
    assert message["Subject"] == "Reminder: Pay <rent> (due Thursday 1 July 2027, 09:00 EDT)"
    assert message["To"] == "alice@example.com"
    assert message["Message-ID"] == f"<reminder.{TASK}.0.1@todo.example>"
    body = part(message, "plain")
    assert "due in 15 minutes: Thursday 1 July 2027, 09:00 EDT (America/New_York)" in body
    assert "Landlord's account" in body
    assert "<h2>Reminder: Pay &lt;rent&gt;</h2>" in part(message, "html")  # escaped


def test_titles_and_senders_beyond_ascii_survive_the_wire() -> None:
    built = email(title="Café ☕ – 9:00", description="Überweisung").build("Tâches <todo@example.com>", NOW)
    message = parse(built)
    assert message["Subject"].startswith("Reminder: Café ☕ – 9:00 (due ")
    assert message["From"] == "Tâches <todo@example.com>"
    assert "Überweisung" in part(message, "plain") and "Café ☕" in part(message, "html")


def test_an_email_in_utc_does_not_name_the_zone_twice_and_one_without_due_time_says_so() -> None:
    utc = parse(email(zone=reminders.zone_for("UTC")).build("r@x", datetime(2027, 6, 28, 13, 0, tzinfo=UTC)))
    assert "due in 3 days: Thursday 1 July 2027, 13:00 UTC\n" in part(utc, "plain")
    undated = parse(email(due_at=None, description=None).build("r@x", NOW))
    assert undated["Subject"] == "Reminder: Pay <rent>"
    assert "Due: no due date" in part(undated, "plain")


def test_a_lead_reaching_before_year_one_counts_as_long_past_not_an_overflow() -> None:
    assert reminders.remind_time(
        {"before": "P3000Y"}, datetime(2026, 12, 2, tzinfo=UTC)
    ) == datetime.min.replace(tzinfo=UTC)
    due = datetime(1, 1, 2, tzinfo=UTC)
    assert reminders.remind_time({"before": "P30D"}, due) == datetime.min.replace(tzinfo=UTC)
    assert reminders.plan({"before": "P30D"}, due, datetime.now(UTC), "a@example.com").status == "skipped"


@pytest.mark.parametrize(
    ("title", "subject"),
    [
        ("Buy:\nMilk: 2L", "Buy: Milk: 2L"),
        ("Pay\r\nBcc: mallory@example.com", "Pay Bcc: mallory@example.com"),
        ("Kaufe:\nMilch: 2L für 2 €", "Kaufe: Milch: 2L für 2 €"),
        ("Tab\tand\x0bvertical\x0cfeed\x1cseparators\u2028too", "Tab and vertical feed separators too"),
        ("bell\x07 and escape\x1b[31m ", "bell and escape [31m"),
    ],
)
def test_a_title_with_line_breaks_or_control_characters_makes_one_subject_line(
    title: str, subject: str
) -> None:
    # Rows written before titles were checked may hold them; the email must still go out.
    message = parse(email(title=title, due_at=None).build("r@x", NOW))
    assert message["Subject"] == f"Reminder: {subject}"
    assert set(message.keys()) == {
        "Content-Type",
        "MIME-Version",
        "Subject",
        "From",
        "To",
        "Date",
        "Message-ID",
        "Auto-Submitted",
    }
    assert title.splitlines()[0] in part(message, "plain")


def test_a_recipient_with_a_line_break_cannot_add_a_header() -> None:
    # (The mailer refuses such an address on the SMTP command line; the header stays one line.)
    built = email(recipient="alice@example.com\r\nBcc: mallory@example.com").build("r@x", NOW)
    assert (
        "Bcc" not in parse(built) and b"To: alice@example.com Bcc: mallory@example.com\n" in built.as_bytes()
    )


def test_a_description_is_body_text_whatever_it_holds() -> None:
    # Not a defect: the body is base64 (utf-8), so line breaks, a lone "." line
    # (SMTP's end of data) or header-like lines in a description stay text.
    text = "Line one\r\n.\r\nBcc: mallory@example.com\n\x07 bell"
    message = parse(email(description=text).build("r@x", NOW))
    assert "Bcc" not in message
    assert "Bcc: mallory@example.com\n\x07 bell" in part(message, "plain")
