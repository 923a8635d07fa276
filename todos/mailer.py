"""Email over SMTP (aiosmtplib): one message, retried while the failure is
transient, within a bounded time (Settings.smtp_budget).

Transient: a 4xx reply, a refused, dropped or timed-out connection. Permanent:
a 5xx reply (unknown mailbox, refused sender, rejected authentication) or a
server without an extension we are configured to need (STARTTLS): retrying
would fail the same way, so the reminder is marked failed with the reply.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import aiosmtplib

from todos.models import utcnow
from todos.settings import Settings


class DeliveryFailed(Exception):
    def __init__(self, reason: str, attempts: int, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts
        self.permanent = permanent


@dataclass(frozen=True)
class Delivered:
    attempts: int
    sent_at: datetime


def classify(error: Exception) -> tuple[bool, str]:
    """(permanent?, reason) for an exception of one SMTP attempt."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        replies = [(r.code, f"{r.code} {r.message} ({r.recipient})") for r in error.recipients]
        return all(code >= 500 for code, _ in replies), "; ".join(text for _, text in replies)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return error.code >= 500, f"{error.code} {error.message}"
    if isinstance(error, aiosmtplib.SMTPNotSupported):
        return True, f"SMTP server: {error}"
    if isinstance(error, TimeoutError):
        return False, "SMTP server timed out"
    return False, f"{type(error).__name__}: {error}"


Send = Callable[..., Awaitable[Any]]
Sleep = Callable[[float], Awaitable[None]]


class Mailer:
    def __init__(
        self,
        settings: Settings,
        *,
        send: Send = aiosmtplib.send,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self._send = send
        self._sleep = sleep
        self._clock = clock

    def backoff(self, attempt: int) -> float:
        """Wait after failed attempt `attempt` (1-based): exponential, capped,
        with jitter so reminders that failed together do not retry together."""
        cap = min(
            self.settings.smtp_retry_initial_seconds * 2 ** (attempt - 1),
            self.settings.smtp_retry_max_seconds,
        )
        return cap * random.uniform(0.5, 1.0)

    async def _attempt(self, message: EmailMessage) -> None:
        settings = self.settings
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        async with asyncio.timeout(settings.smtp_timeout_seconds):
            await self._send(
                message,
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=password,
                use_tls=settings.smtp_security == "tls",
                start_tls=settings.smtp_security == "starttls",
                timeout=settings.smtp_timeout_seconds,
            )

    async def deliver(self, message: EmailMessage) -> Delivered:
        """Send `message`; raises DeliveryFailed with the server's reply when it
        is refused for good or every attempt failed."""
        limit = self.settings.smtp_max_attempts
        reason = ""
        for attempt in range(1, limit + 1):
            try:
                await self._attempt(message)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
                permanent, reason = classify(error)
                if permanent:
                    raise DeliveryFailed(reason, attempt, permanent=True) from error
                if attempt < limit:
                    await self._sleep(self.backoff(attempt))
                continue
            return Delivered(attempts=attempt, sent_at=self._clock())
        raise DeliveryFailed(f"gave up after {limit} attempts; last: {reason}", limit, permanent=False)
