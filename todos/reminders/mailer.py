"""Email over SMTP (aiosmtplib): one message, retried while the failure is
transient, within a bounded time (Settings.smtp_budget).

Transient: a 4xx reply, a refused, dropped or timed-out connection. Permanent:
a 5xx reply (unknown mailbox, refused sender, rejected authentication) or a
server without an extension we are configured to need (STARTTLS): retrying
would fail the same way, so the reminder is marked failed with the reply.
Any other error (the email package refusing a header, aiosmtplib refusing an
address that would break its command line) is permanent too: it comes from
the message itself, so every retry of the job would raise it again.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.utils import parseaddr
from typing import Any, Protocol

import aiosmtplib

from todos.core.fields import utcnow
from todos.core.settings import Settings


class DeliveryFailed(Exception):
    def __init__(self, reason: str, attempts: int, *, permanent: bool) -> None:
        # Stored as the reminder's failure_reason: PostgreSQL text holds no NUL,
        # and a reply or error message with one would fail that very write.
        reason = reason.replace("\x00", "\\x00")
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts
        self.permanent = permanent


class _NoFreeConnection(Exception):
    """Every connection stayed in use for as long as the budget could wait."""


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
    return False, _described(error)


def _described(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


class Client(Protocol):
    """The part of aiosmtplib.SMTP a connected client is used through."""

    async def send_message(self, message: Message, *, sender: str, recipients: list[str]) -> Any: ...

    def close(self) -> None: ...


Connect = Callable[[], Awaitable[Client]]
Sleep = Callable[[float], Awaitable[None]]

# An idle connection older than this is closed rather than reused: servers
# drop idle clients (RFC 5321 asks them to wait 5 minutes; many wait less).
IDLE_SECONDS = 30.0


class Mailer:
    """Keeps up to `smtp_pool_size` connections open between messages:
    connecting (TCP, greeting, EHLO, STARTTLS, AUTH) costs more than sending
    one reminder, and reminders tend to fall due together. A burst opens
    more, and the extras close after use; but never more than
    `smtp_max_connections` at once, idle ones included (a new one is opened
    only when none is idle): a 09:00 burst opened one per reminder due, and
    servers refuse a client that holds too many. A send past that waits for
    one to come free."""

    def __init__(
        self,
        settings: Settings,
        *,
        connect: Connect | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._connect = connect or self._open
        self._sleep = sleep
        self._clock = clock
        self._monotonic = monotonic
        self._sender = parseaddr(settings.smtp_from)[1]
        self._idle: list[tuple[Client, float]] = []
        self._slots = asyncio.Semaphore(settings.smtp_max_connections)

    async def _open(self) -> Client:
        settings = self.settings
        client = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            use_tls=settings.smtp_security == "tls",
            start_tls=settings.smtp_security == "starttls",
            timeout=settings.smtp_timeout_seconds,
        )
        await client.connect()  # and EHLO, STARTTLS, AUTH as configured
        return client

    def _reusable(self) -> Client | None:
        while self._idle:
            client, since = self._idle.pop()
            if self._monotonic() - since < IDLE_SECONDS:
                return client
            client.close()
        return None

    async def _send(self, client: Client, message: Message, recipient: str) -> None:
        try:
            await client.send_message(message, sender=self._sender, recipients=[recipient])
        except BaseException:
            client.close()
            raise
        if len(self._idle) < self.settings.smtp_pool_size:
            self._idle.append((client, self._monotonic()))
        else:
            client.close()

    @asynccontextmanager
    async def _connection(self, deadline: float) -> AsyncIterator[None]:
        """One of the `smtp_max_connections`, held for one attempt. Waiting
        for it comes before the attempt's own timeout starts (a queued send is
        not a slow server), and may last until only that timeout is left
        before the delivery's deadline."""
        if self._slots.locked():
            patience = deadline - self._monotonic() - self.settings.smtp_timeout_seconds
            if patience <= 0:
                raise _NoFreeConnection
            try:
                async with asyncio.timeout(patience):
                    await self._slots.acquire()
            except TimeoutError:
                raise _NoFreeConnection from None
        else:
            await self._slots.acquire()
        try:
            yield
        finally:
            self._slots.release()

    async def _attempt(self, message: Message, recipient: str) -> None:
        async with asyncio.timeout(self.settings.smtp_timeout_seconds):
            reused = self._reusable()
            if reused is not None:
                try:
                    await self._send(reused, message, recipient)
                    return
                except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                    pass  # the server hung up on the idle connection: a fresh one is no retry
            await self._send(await self._connect(), message, recipient)

    def backoff(self, attempt: int) -> float:
        """Wait after failed attempt `attempt` (1-based): exponential, capped,
        with jitter so reminders that failed together do not retry together."""
        cap = min(
            self.settings.smtp_retry_initial_seconds * 2 ** (attempt - 1),
            self.settings.smtp_retry_max_seconds,
        )
        return cap * random.uniform(0.5, 1.0)

    async def deliver(self, message: Message, recipient: str) -> Delivered:
        """Send `message` to `recipient`; raises DeliveryFailed with the
        server's reply when it is refused for good or every attempt failed.

        All of it, waits for a free connection included, fits in
        Settings.smtp_budget: the reminder's claim lasts that long (plus a
        margin), and a delivery still going after it could be taken over by
        another firing and the email sent twice."""
        settings = self.settings
        deadline = self._monotonic() + settings.smtp_budget.total_seconds()
        reason = ""
        for attempt in range(1, settings.smtp_max_attempts + 1):
            try:
                async with self._connection(deadline):
                    await self._attempt(message, recipient)
            except _NoFreeConnection:
                raise DeliveryFailed(
                    f"no SMTP connection came free within the delivery budget (all "
                    f"TODO_SMTP_MAX_CONNECTIONS={settings.smtp_max_connections} in use)"
                    + (f"; last: {reason}" if reason else ""),
                    attempt - 1,
                    permanent=False,
                ) from None
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
                permanent, reason = classify(error)
                if permanent:
                    raise DeliveryFailed(reason, attempt, permanent=True) from error
                if attempt == settings.smtp_max_attempts:
                    break
                wait = self.backoff(attempt)
                if self._monotonic() + wait + settings.smtp_timeout_seconds > deadline:
                    raise DeliveryFailed(
                        f"gave up after {attempt} attempt{'s' * (attempt != 1)}: one more would outlast "
                        f"the delivery budget; last: {reason}",
                        attempt,
                        permanent=False,
                    ) from error
                await self._sleep(wait)
            except Exception as error:
                raise DeliveryFailed(_described(error), attempt, permanent=True) from error
            else:
                return Delivered(attempts=attempt, sent_at=self._clock())
        limit = settings.smtp_max_attempts
        raise DeliveryFailed(f"gave up after {limit} attempts; last: {reason}", limit, permanent=False)

    def close(self) -> None:
        while self._idle:
            self._idle.pop()[0].close()
