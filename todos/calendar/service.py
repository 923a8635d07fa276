"""Creating, rotating and revoking a person's feed, and serving it by its token."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from todos.calendar.feed import Entry, calendar
from todos.calendar.models import CalendarFeed
from todos.core.errors import NotFound
from todos.core.users import User
from todos.effects import Service
from todos.series.models import LIVE_STATUSES, Series
from todos.tasks.models import Task, TaskStatus

# 32 random bytes: the token is the feed's only key (calendar apps cannot send a bearer token).
TOKEN_BYTES = 32


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Served:
    body: str
    etag: str
    last_modified: datetime


@dataclass(frozen=True)
class CalendarService(Service):
    def rotate(self, user: User) -> tuple[str, datetime]:
        """A new secret for the person's feed (the old one, if any, stops working): the token and when."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = self.clock()
        with self.uow.transaction() as tx:
            feed = tx.session.get(CalendarFeed, user.id, with_for_update=True)
            if feed is None:
                feed = CalendarFeed(user_id=user.id, token_hash=_hash(token))
            feed.token_hash, feed.created_at = _hash(token), now
            tx.session.add(feed)
        return token, now

    def revoke(self, user: User) -> None:
        """Idempotent: revoking a feed that does not exist changes nothing."""
        with self.uow.transaction() as tx:
            feed = tx.session.get(CalendarFeed, user.id)
            if feed is not None:
                tx.session.delete(feed)

    def serve(self, token: str, *, as_events: bool) -> Served:
        now = self.clock()
        with self.uow.database.session() as session:
            feed = session.exec(select(CalendarFeed).where(CalendarFeed.token_hash == _hash(token))).first()
            if feed is None:
                raise NotFound("No calendar feed has this address; it may have been replaced or revoked.")
            entries = _entries(session, feed.user_id)
        body = calendar(entries, as_events=as_events, now=now)
        changed = [entry.task.updated_at for entry in entries] + [
            entry.series.updated_at for entry in entries if entry.series is not None
        ]
        # DTSTAMP is the time of serving: the tag is over what changes with the tasks.
        stable = "\n".join(line for line in body.splitlines() if not line.startswith("DTSTAMP:"))
        etag = hashlib.sha256(stable.encode()).hexdigest()[:32]
        return Served(body, f'"{etag}"', max([feed.created_at, *changed]))


def _entries(session: Session, user_id: str) -> list[Entry]:
    """The person's pending tasks with a due time; a live series' current one stands for its series."""
    rows = session.exec(
        select(Task, Series)
        .outerjoin(Series, col(Series.id) == col(Task.series_id))
        .where(Task.user_id == user_id, Task.status == TaskStatus.pending, col(Task.due_at).is_not(None))
        .order_by(col(Task.due_at), col(Task.id))
    ).all()
    return [
        Entry(task, series if series is not None and series.status in LIVE_STATUSES else None)
        for task, series in rows
    ]
