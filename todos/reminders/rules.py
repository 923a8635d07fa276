"""Reminder rules without I/O: job names and data, when a reminder fires,
and the email it sends. The service layer applies them to the database;
todos.reminders.delivery runs the callback; tests drive them directly.

Rules:
- `{before: D}` fires at due_at - D, `{at: T}` at T.
- A reminder whose time has already passed when it is set fires at once if
  the task is still due in the future (the user still has time to act), and
  is skipped otherwise: a reminder for something already overdue is noise.
- Due times in the email are shown in the series' time zone for a recurring
  task, else in the zone of the user's token (`zoneinfo` claim), else in
  TODO_REMINDER_TIMEZONE (UTC by default).
"""

from __future__ import annotations

import html
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from todos.reminders.models import ReminderSpec, ReminderStatus

JOB_PREFIX = "reminder-"


def job_name(task_id: uuid.UUID, n: int) -> str:
    return f"{JOB_PREFIX}{task_id}-{n}"


def parse_job_name(name: str) -> tuple[uuid.UUID, int] | None:
    """(task_id, n) of one of our reminder jobs, or None for any other name."""
    if not name.startswith(JOB_PREFIX):
        return None
    task_part, _, index = name[len(JOB_PREFIX) :].rpartition("-")
    try:
        task_id = uuid.UUID(task_part)
    except ValueError:
        return None
    if not index.isdigit():
        return None
    return task_id, int(index)


@dataclass(frozen=True)
class JobData:
    """What a reminder's job carries: the schedule it was armed for."""

    task_id: uuid.UUID
    n: int
    generation: int

    def to_bytes(self) -> bytes:
        return json.dumps({"task_id": str(self.task_id), "n": self.n, "generation": self.generation}).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> JobData:
        """Raises ValueError on anything that is not data this module wrote."""
        try:
            value = json.loads(raw)
            return cls(
                task_id=uuid.UUID(value["task_id"]), n=int(value["n"]), generation=int(value["generation"])
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"not reminder job data: {raw[:200]!r}") from error


@dataclass(frozen=True)
class Plan:
    """Where one reminder stands once set: its time, when its job fires (if it
    does) and otherwise why not."""

    remind_at: datetime | None
    status: ReminderStatus
    fire_at: datetime | None = None
    reason: str | None = None


def remind_time(spec: dict[str, Any], due_at: datetime | None) -> datetime | None:
    """The instant a stored spec names; None for `before` without a due time."""
    parsed = ReminderSpec.model_validate(spec)
    if parsed.at is not None:
        return parsed.at
    if due_at is None or parsed.before is None:
        return None
    try:
        return due_at - parsed.before
    except OverflowError:
        # A due time in the first year of the calendar: long past in any case.
        return datetime.min.replace(tzinfo=UTC)


def plan(spec: dict[str, Any], due_at: datetime | None, now: datetime, recipient: str | None) -> Plan:
    remind_at = remind_time(spec, due_at)
    if remind_at is None:
        return Plan(
            None, ReminderStatus.skipped, reason="The task has no due time for `before` to count from."
        )
    if recipient is None:
        return Plan(
            remind_at,
            ReminderStatus.failed,
            reason="No email address: the token that created the task had no `email` claim.",
        )
    if remind_at > now:
        return Plan(remind_at, ReminderStatus.scheduled, fire_at=remind_at)
    if due_at is not None and due_at > now:
        return Plan(remind_at, ReminderStatus.scheduled, fire_at=now)
    return Plan(
        remind_at,
        ReminderStatus.skipped,
        reason="Its time had passed when it was set, and so had the task's due time.",
    )


def zone_for(*candidates: str | None) -> ZoneInfo:
    """The first candidate that names a known IANA zone."""
    for name in candidates:
        if not name:
            continue
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC")


def _local(value: datetime, zone: ZoneInfo) -> str:
    local = value.astimezone(zone)
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M} {local.tzname()}"


def _until(due_at: datetime, now: datetime) -> str:
    seconds = int((due_at - now).total_seconds())
    if seconds <= 0:
        return "now overdue" if seconds < -60 else "due now"
    minutes = (seconds + 59) // 60
    if minutes < 60:
        return f"due in {minutes} minute{'s' * (minutes != 1)}"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return (
            f"due in {hours} h {minutes:02d} min" if minutes else f"due in {hours} hour{'s' * (hours != 1)}"
        )
    return f"due in {round(hours / 24)} days"


# Whitespace (line breaks of every kind included), C0 and C1 controls.
_NOT_ONE_LINE = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")


def _header_text(value: str) -> str:
    """`value` as one header line: each run of whitespace or control
    characters becomes a space. A title may hold line breaks (and rows from
    before titles were checked may hold other controls); the email package
    refuses a header value that looks as if it held another header, and a
    recipient with CR/LF must not add one."""
    return _NOT_ONE_LINE.sub(" ", value).strip()


@dataclass(frozen=True)
class ReminderEmail:
    """What a reminder email says, and to whom; `message_id` is stable per
    reminder and schedule, so a re-sent copy can be recognised as one."""

    recipient: str
    title: str
    description: str | None
    due_at: datetime | None
    zone: ZoneInfo
    message_id: str

    def build(self, sender: str, now: datetime) -> MIMEMultipart:
        """The message, plain text and HTML. Built with the compat32 MIME
        classes: a sixth of the CPU of EmailMessage's header registry, which
        matters when a thousand reminders fall due in the same seconds."""
        title = _header_text(self.title)
        if self.due_at is not None:
            when = _local(self.due_at, self.zone)
            subject = f"Reminder: {title} (due {when})"
            named = (
                "" if self.zone.key == self.due_at.astimezone(self.zone).tzname() else f" ({self.zone.key})"
            )
            status = f"{_until(self.due_at, now)}: {when}{named}"
        else:
            subject = f"Reminder: {title}"
            status = "no due date"
        message = MIMEMultipart("alternative")
        # RFC 2047-encoded only when it must be: encoding costs CPU per email.
        message["Subject"] = (
            subject if subject.isascii() else Header(subject, "utf-8", header_name="Subject").encode()
        )
        message["From"] = formataddr(parseaddr(sender), charset="utf-8")
        message["To"] = _header_text(self.recipient)
        message["Date"] = format_datetime(now.astimezone(self.zone))
        message["Message-ID"] = self.message_id
        message["Auto-Submitted"] = "auto-generated"
        lines = [f"Reminder: {self.title}", "", f"Due: {status}"]
        if self.description:
            lines += ["", self.description]
        lines += ["", "-- ", "Sent by your todo assistant. Complete the task to stop its reminders."]
        message.attach(MIMEText("\n".join(lines) + "\n", "plain", "utf-8"))
        description = (
            f'<p style="white-space: pre-wrap">{html.escape(self.description)}</p>'
            if self.description
            else ""
        )
        page = (
            "<!doctype html><html><body>"
            f"<h2>Reminder: {html.escape(self.title)}</h2>"
            f"<p><strong>Due:</strong> {html.escape(status)}</p>"
            f"{description}"
            '<p style="color:#666;font-size:small">Sent by your todo assistant. '
            "Complete the task to stop its reminders.</p>"
            "</body></html>\n"
        )
        message.attach(MIMEText(page, "html", "utf-8"))
        return message


def message_id(task_id: uuid.UUID, n: int, generation: int, sender: str) -> str:
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    return f"<reminder.{task_id}.{n}.{generation}@{domain}>"
