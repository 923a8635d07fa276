"""SMTP delivery: which failures are retried, how long it waits, and when
it gives up (a scripted `send` instead of a server)."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest

from todos.mailer import DeliveryFailed, Mailer, classify
from todos.settings import Settings

pytestmark = pytest.mark.unit


class Script:
    """A fake aiosmtplib.send that raises the scripted errors in turn, then succeeds."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, message: EmailMessage, **kwargs: Any) -> None:
        self.calls.append(kwargs)
        if self.errors:
            raise self.errors.pop(0)


def mailer(send: Any, **settings: Any) -> tuple[Mailer, list[float]]:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    return Mailer(Settings(env="dev", **settings), send=send, sleep=sleep), waits


def refused(code: int, text: str) -> aiosmtplib.SMTPRecipientsRefused:
    return aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(code, text, "bob@example.com")])


async def test_transient_refusals_are_retried_with_growing_waits_until_accepted() -> None:
    send = Script(*(refused(451, "4.3.2 try later") for _ in range(3)))
    m, waits = mailer(send, smtp_retry_initial_seconds=1, smtp_retry_max_seconds=30)
    delivered = await m.deliver(EmailMessage())
    assert delivered.attempts == 4 and len(send.calls) == 4
    # Exponential with jitter in [cap/2, cap]: 1, 2, 4 s caps.
    for wait, cap in zip(waits, (1, 2, 4), strict=True):
        assert cap / 2 <= wait <= cap


async def test_a_permanent_refusal_is_not_retried() -> None:
    m, waits = mailer(Script(refused(550, "5.1.1 no such user")))
    with pytest.raises(DeliveryFailed) as failed:
        await m.deliver(EmailMessage())
    assert failed.value.permanent and failed.value.attempts == 1 and waits == []
    assert failed.value.reason == "550 5.1.1 no such user (bob@example.com)"


async def test_giving_up_after_the_last_attempt_keeps_the_last_reason() -> None:
    send = Script(*(ConnectionRefusedError(111, "Connection refused") for _ in range(10)))
    m, waits = mailer(send, smtp_max_attempts=10, smtp_retry_initial_seconds=1, smtp_retry_max_seconds=8)
    with pytest.raises(DeliveryFailed) as failed:
        await m.deliver(EmailMessage())
    assert not failed.value.permanent and failed.value.attempts == 10 and len(send.calls) == 10
    assert len(waits) == 9 and max(waits) <= 8  # capped
    assert failed.value.reason.startswith("gave up after 10 attempts; last: ConnectionRefusedError")


async def test_an_attempt_that_hangs_is_cut_off_and_retried() -> None:
    class Hangs(Script):
        async def __call__(self, message: EmailMessage, **kwargs: Any) -> None:
            self.calls.append(kwargs)
            if len(self.calls) == 1:
                await asyncio.sleep(10)

    send = Hangs()
    m, _ = mailer(send, smtp_timeout_seconds=0.05)
    assert (await m.deliver(EmailMessage())).attempts == 2


@pytest.mark.parametrize(
    ("error", "permanent", "reason"),
    [
        (aiosmtplib.SMTPResponseException(421, "4.7.0 busy"), False, "421 4.7.0 busy"),
        (aiosmtplib.SMTPSenderRefused(553, "5.7.1 not allowed", "me@x"), True, "553 5.7.1 not allowed"),
        (aiosmtplib.SMTPAuthenticationError(535, "5.7.8 bad credentials"), True, "535 5.7.8 bad credentials"),
        (aiosmtplib.SMTPServerDisconnected("gone"), False, "SMTPServerDisconnected: gone"),
        (aiosmtplib.SMTPNotSupported("STARTTLS extension not supported"), True, "SMTP server: STARTTLS"),
        (TimeoutError(), False, "SMTP server timed out"),
    ],
)
def test_failures_are_classified_by_the_reply(error: Exception, permanent: bool, reason: str) -> None:
    is_permanent, text = classify(error)
    assert is_permanent is permanent and text.startswith(reason)


def test_recipients_refused_is_permanent_only_if_every_reply_is() -> None:
    mixed = aiosmtplib.SMTPRecipientsRefused(
        [
            aiosmtplib.SMTPRecipientRefused(550, "5.1.1 unknown", "a@x"),
            aiosmtplib.SMTPRecipientRefused(452, "4.2.2 mailbox full", "b@x"),
        ]
    )
    assert classify(mixed) == (False, "550 5.1.1 unknown (a@x); 452 4.2.2 mailbox full (b@x)")


@pytest.mark.parametrize(
    ("security", "use_tls", "start_tls"),
    [("starttls", False, True), ("tls", True, False), ("none", False, False)],
)
async def test_connection_settings_reach_the_client(security: str, use_tls: bool, start_tls: bool) -> None:
    send = Script()
    m, _ = mailer(
        send,
        smtp_host="mail.example.com",
        smtp_port=465,
        smtp_security=security,
        smtp_username="bot",
        smtp_password="s3cret",
    )
    await m.deliver(EmailMessage())
    (call,) = send.calls
    assert call["hostname"] == "mail.example.com" and call["port"] == 465
    assert call["username"] == "bot" and call["password"] == "s3cret"
    assert (call["use_tls"], call["start_tls"]) == (use_tls, start_tls)


def test_the_delivery_budget_bounds_every_wait_and_attempt() -> None:
    settings = Settings(
        env="dev",
        smtp_max_attempts=10,
        smtp_retry_initial_seconds=1,
        smtp_retry_max_seconds=30,
        smtp_timeout_seconds=10,
    )
    # Waits 1+2+4+8+16 then 30 x4 = 151 s; ten attempts of at most 10 s.
    assert settings.smtp_budget.total_seconds() == 151 + 100
