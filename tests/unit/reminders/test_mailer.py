"""SMTP delivery: which failures are retried, how long it waits, when it
gives up, and how connections are reused (scripted clients, no server)."""

from __future__ import annotations

import asyncio
from email.message import Message
from typing import Any

import aiosmtplib
import pytest

from todos.core.settings import Settings
from todos.reminders.mailer import DeliveryFailed, Mailer, classify

pytestmark = pytest.mark.unit

TO = "bob@example.com"


class FakeClient:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.closed = False

    async def send_message(self, message: Message, *, sender: str, recipients: list[str]) -> None:
        assert not self.closed, "sent on a closed connection"
        self.server.sends.append((self, sender, recipients))
        self.server.sessions += 1
        self.server.most_sessions = max(self.server.most_sessions, self.server.sessions)
        try:
            if self.server.errors:
                error = self.server.errors.pop(0)
                if isinstance(error, float):
                    await asyncio.sleep(error)
                elif isinstance(error, asyncio.Event):
                    await error.wait()
                else:
                    raise error
        finally:
            self.server.sessions -= 1

    def close(self) -> None:
        self.closed = True


class Server:
    """Scripted outcomes of successive sends (an exception, a float: hang
    that long, an Event: hang until it is set, or nothing: accepted), every
    connection opened, and the most sends it served at once."""

    def __init__(self, *errors: Exception | float | asyncio.Event) -> None:
        self.errors = list(errors)
        self.sends: list[tuple[FakeClient, str, list[str]]] = []
        self.connections: list[FakeClient] = []
        self.sessions = 0
        self.most_sessions = 0

    async def connect(self) -> FakeClient:
        client = FakeClient(self)
        self.connections.append(client)
        return client


def mailer(server: Server, **settings: Any) -> tuple[Mailer, list[float]]:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    return Mailer(Settings(env="dev", **settings), connect=server.connect, sleep=sleep), waits


def refused(code: int, text: str) -> aiosmtplib.SMTPRecipientsRefused:
    return aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(code, text, TO)])


async def test_transient_refusals_are_retried_with_growing_waits_until_accepted() -> None:
    server = Server(*(refused(451, "4.3.2 try later") for _ in range(3)))
    m, waits = mailer(server, smtp_retry_initial_seconds=1, smtp_retry_max_seconds=30)
    delivered = await m.deliver(Message(), TO)
    assert delivered.attempts == 4 and len(server.sends) == 4
    # Exponential with jitter in [cap/2, cap]: 1, 2, 4 s caps.
    for wait, cap in zip(waits, (1, 2, 4), strict=True):
        assert cap / 2 <= wait <= cap


async def test_a_permanent_refusal_is_not_retried() -> None:
    m, waits = mailer(Server(refused(550, "5.1.1 no such user")))
    with pytest.raises(DeliveryFailed) as failed:
        await m.deliver(Message(), TO)
    assert failed.value.permanent and failed.value.attempts == 1 and waits == []
    assert failed.value.reason == "550 5.1.1 no such user (bob@example.com)"


async def test_giving_up_after_the_last_attempt_keeps_the_last_reason() -> None:
    server = Server(*(ConnectionRefusedError(111, "Connection refused") for _ in range(10)))
    m, waits = mailer(server, smtp_max_attempts=10, smtp_retry_initial_seconds=1, smtp_retry_max_seconds=8)
    with pytest.raises(DeliveryFailed) as failed:
        await m.deliver(Message(), TO)
    assert not failed.value.permanent and failed.value.attempts == 10 and len(server.sends) == 10
    assert len(waits) == 9 and max(waits) <= 8  # capped
    assert failed.value.reason.startswith("gave up after 10 attempts; last: ConnectionRefusedError")


async def test_an_attempt_that_hangs_is_cut_off_and_retried() -> None:
    server = Server(10.0)
    m, _ = mailer(server, smtp_timeout_seconds=0.05)
    assert (await m.deliver(Message(), TO)).attempts == 2
    assert server.connections[0].closed  # a timed-out connection is not reused


async def test_connections_are_reused_and_the_extras_of_a_burst_closed() -> None:
    server = Server(0.01, 0.01, 0.01)  # three slow sends overlap
    m, _ = mailer(server, smtp_pool_size=2)
    await asyncio.gather(*(m.deliver(Message(), TO) for _ in range(3)))
    assert len(server.connections) == 3
    assert sum(c.closed for c in server.connections) == 1  # one over the pool size
    await m.deliver(Message(), TO)
    assert len(server.connections) == 3  # reused, not reopened
    sender, recipients = server.sends[-1][1:]
    assert (sender, recipients) == ("reminders@localhost", [TO])
    m.close()
    assert all(c.closed for c in server.connections)


async def test_a_connection_the_server_dropped_is_replaced_without_costing_an_attempt() -> None:
    server = Server()
    m, waits = mailer(server)
    await m.deliver(Message(), TO)
    server.errors.append(aiosmtplib.SMTPServerDisconnected("Connection lost"))
    assert (await m.deliver(Message(), TO)).attempts == 1
    assert len(server.connections) == 2 and server.connections[0].closed and waits == []


async def test_a_failed_send_closes_its_connection() -> None:
    server = Server(refused(451, "4.3.2 try later"))
    m, _ = mailer(server)
    assert (await m.deliver(Message(), TO)).attempts == 2
    assert server.connections[0].closed and not server.connections[1].closed


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
async def test_connection_settings_reach_the_client(
    monkeypatch: pytest.MonkeyPatch, security: str, use_tls: bool, start_tls: bool
) -> None:
    made: list[dict[str, Any]] = []

    class Recorder:
        def __init__(self, **kwargs: Any) -> None:
            made.append(kwargs)

        async def connect(self) -> None:
            pass

        async def send_message(self, message: Message, **kwargs: Any) -> None:
            pass

        def close(self) -> None:
            pass

    monkeypatch.setattr(aiosmtplib, "SMTP", Recorder)
    settings = Settings(
        env="dev",
        smtp_host="mail.example.com",
        smtp_port=465,
        smtp_security=security,  # type: ignore[arg-type]
        smtp_username="bot",
        smtp_password="s3cret",  # type: ignore[arg-type]
    )
    await Mailer(settings).deliver(Message(), TO)
    (kwargs,) = made
    assert kwargs["hostname"] == "mail.example.com" and kwargs["port"] == 465
    assert kwargs["username"] == "bot" and kwargs["password"] == "s3cret"
    assert (kwargs["use_tls"], kwargs["start_tls"]) == (use_tls, start_tls)


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


async def test_sends_past_the_connection_cap_wait_for_one_without_timing_out_their_attempt() -> None:
    # A burst opened one SMTP session per reminder due. Four sends of 0.15 s
    # through one connection: the last waits 0.45 s, longer than an attempt
    # may take (0.4 s), and must still succeed at its first attempt.
    server = Server(0.15, 0.15, 0.15, 0.15)
    m, _ = mailer(server, smtp_pool_size=1, smtp_max_connections=1, smtp_timeout_seconds=0.4)
    delivered = await asyncio.gather(*(m.deliver(Message(), TO) for _ in range(4)))
    assert [d.attempts for d in delivered] == [1, 1, 1, 1]
    assert server.most_sessions == 1 and len(server.connections) == 1


async def test_a_send_that_gets_no_connection_within_the_budget_fails_as_transient() -> None:
    # With one attempt the budget is that attempt's timeout: no time to wait.
    held = asyncio.Event()
    server = Server(held)
    m, _ = mailer(server, smtp_pool_size=1, smtp_max_connections=1, smtp_max_attempts=1)
    first = asyncio.create_task(m.deliver(Message(), TO))
    while not server.sends:
        await asyncio.sleep(0)
    with pytest.raises(DeliveryFailed) as failed:
        await m.deliver(Message(), TO)
    assert not failed.value.permanent and failed.value.attempts == 0
    assert "TODO_SMTP_MAX_CONNECTIONS" in failed.value.reason
    held.set()
    assert (await first).attempts == 1


async def test_retries_stop_when_another_attempt_would_outlast_the_budget() -> None:
    # The reminder's claim lasts the budget (plus a margin): a delivery still
    # retrying after it could be taken over by another firing and sent twice.
    now = [0.0]

    async def slow_connect() -> FakeClient:
        now[0] += 25.0  # say it waited that long for a connection
        return await server.connect()

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    server = Server(*(refused(451, "4.3.2 try later") for _ in range(3)))
    settings = Settings(
        env="dev",
        smtp_max_attempts=3,
        smtp_retry_initial_seconds=1,
        smtp_retry_max_seconds=30,
        smtp_timeout_seconds=10,
    )
    assert settings.smtp_budget.total_seconds() == 1 + 2 + 3 * 10
    m = Mailer(settings, connect=slow_connect, sleep=sleep, monotonic=lambda: now[0])
    with pytest.raises(DeliveryFailed) as failed:
        await m.deliver(Message(), TO)
    assert not failed.value.permanent and failed.value.attempts == 1 and len(server.sends) == 1
    assert failed.value.reason.endswith("last: 451 4.3.2 try later (bob@example.com)")


def test_the_connection_cap_holds_the_idle_pool() -> None:
    with pytest.raises(ValueError, match="TODO_SMTP_MAX_CONNECTIONS"):
        Settings(env="dev", smtp_pool_size=8, smtp_max_connections=4)


def test_a_reason_never_holds_a_nul_which_its_text_column_cannot() -> None:
    # A NUL from a server's reply would fail the very write that records the failure.
    reply = aiosmtplib.SMTPResponseException(554, "5.6.0 bad\x00message")
    assert DeliveryFailed(classify(reply)[1], 1, permanent=True).reason == "554 5.6.0 bad\\x00message"
