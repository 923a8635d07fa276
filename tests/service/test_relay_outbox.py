"""The outbox relay against the real database, with a fake publisher: a row the
broker refuses again and again while it takes others is set aside and its
user's later events follow; an outage sets nothing aside and backs off; no
row stays locked while the broker is being asked."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

import psycopg
import pytest
from sqlalchemy import text

from todos.core.db import Database
from todos.core.settings import Settings
from todos.events import schema as events
from todos.events.outbox import record_events
from todos.events.relay import OutboxRelay, Pending

pytestmark = [pytest.mark.service, pytest.mark.timeout(120)]

POISON = "poison"


class Publisher:
    """Refuses every event whose title is POISON (or everything while `down`);
    records what went out, in order, and can look at the rows while it is asked."""

    def __init__(self, peek: bool = False, database_url: str = "") -> None:
        self.down = False
        self.sent: list[str] = []
        self.locked_while_publishing: list[bool] = []
        self.peek = peek
        self.database_url = database_url

    def publish(self, topic: str, rows: Sequence[Pending]) -> dict[int, str]:
        if self.peek:
            self.locked_while_publishing.append(self._locked([row.id for row in rows]))
        if self.down:
            return {row.id: "UNAVAILABLE: broker down" for row in rows}
        failed = {}
        for row in rows:
            title = json.loads(row.body)["payload"]["title"]
            if title == POISON:
                failed[row.id] = "MESSAGE_TOO_LARGE: the broker refused it"
            else:
                self.sent.append(title)
        return failed

    def _locked(self, ids: list[int]) -> bool:
        """Whether another session would wait for these rows (FOR UPDATE NOWAIT)."""
        url = self.database_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url, autocommit=True) as conn:
            try:
                conn.execute("SELECT id FROM outbox WHERE id = ANY(%s) FOR UPDATE NOWAIT", (ids,))
            except psycopg.errors.LockNotAvailable:
                return True
        return False

    def close(self) -> None:
        pass


def add(database: Database, user: str, *titles: str) -> None:
    with database.session() as session:
        record_events(
            session,
            [
                events.new_event(
                    events.TASK_CREATED, user_id=user, task_id=uuid.uuid4(), payload={"title": t}
                )
                for t in titles
            ],
        )


def relay(publisher: Publisher, database: Database, strikes: int = 3) -> OutboxRelay:
    settings = Settings(env="dev", database_url=database.url, outbox_max_strikes=strikes)
    return OutboxRelay(publisher, database, settings)


def quarantined(database: Database) -> list[tuple[str, str]]:
    with database.session() as session:
        rows = session.execute(
            text(
                "SELECT body -> 'payload' ->> 'title', last_error FROM outbox "
                "WHERE quarantined_at IS NOT NULL"
            )
        )
        return [(title, error) for title, error in rows]


def test_a_poison_row_is_set_aside_and_its_users_later_events_follow(database: Database) -> None:
    publisher = Publisher()
    outbox = relay(publisher, database, strikes=3)
    add(database, "alice", POISON, "alice 2", "alice 3")
    add(database, "bob", "bob 1")
    _, outcome = outbox.run_once()
    assert publisher.sent == ["bob 1"] and list(outcome.failed)
    for n in range(2, 4):
        add(database, "bob", f"bob {n}")  # the broker keeps taking other events
        outbox.run_once()
    assert quarantined(database) == [(POISON, "MESSAGE_TOO_LARGE: the broker refused it")]
    outbox.run_once()
    assert publisher.sent == ["bob 1", "bob 2", "bob 3", "alice 2", "alice 3"]
    assert outbox.pending() == 0


def test_an_outage_sets_nothing_aside(database: Database) -> None:
    publisher = Publisher()
    publisher.down = True
    outbox = relay(publisher, database, strikes=2)
    add(database, "alice", "alice 1")
    add(database, "bob", "bob 1")
    for _ in range(5):
        outbox.run_once()
    assert quarantined(database) == []
    publisher.down = False
    outbox.run_once()
    assert sorted(publisher.sent) == ["alice 1", "bob 1"]


class _NoWait:
    def wait(self, timeout: float) -> None:
        pass


def test_one_refused_row_does_not_back_off_the_relay_for_every_user(database: Database) -> None:
    outbox = relay(Publisher(), database)
    add(database, "alice", POISON)
    add(database, "bob", "bob 1")
    assert outbox._round(_NoWait(), 0.0) == 0.0  # type: ignore[arg-type]


def test_an_outage_backs_the_relay_off(database: Database) -> None:
    publisher = Publisher()
    publisher.down = True
    outbox = relay(publisher, database)
    outbox._stop.set()  # the backoff's wait returns at once
    add(database, "alice", "alice 1")
    assert outbox._round(_NoWait(), 0.0) > 0  # type: ignore[arg-type]


def test_no_row_stays_locked_while_the_broker_is_asked(database: Database) -> None:
    publisher = Publisher(peek=True, database_url=database.url)
    outbox = relay(publisher, database)
    add(database, "alice", "alice 1", "alice 2")
    add(database, "bob", "bob 1")
    outbox.run_once()
    assert publisher.locked_while_publishing and not any(publisher.locked_while_publishing)
    assert sorted(publisher.sent) == ["alice 1", "alice 2", "bob 1"]


def test_rows_claimed_by_a_round_that_died_are_published_once_their_lease_ends(database: Database) -> None:
    from datetime import timedelta

    from todos.core.fields import utcnow

    add(database, "alice", "alice 1")
    with database.session() as session:  # a round that claimed and then crashed
        session.execute(text("UPDATE outbox SET lease_until = now() + interval '1 hour'"))
    early = Publisher()
    relay(early, database).run_once()
    assert early.sent == []
    late = Publisher()
    later = relay(late, database)
    later.clock = lambda: utcnow() + timedelta(hours=2)
    later.run_once()
    assert late.sent == ["alice 1"]
