"""Reading and setting a person's profile, and what it means for their tasks:
the address and zone their reminders use, a new series' zone, the reminders a
new task gets when it asks for none."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from todos.core.fields import rfc3339
from todos.core.users import User
from todos.effects import Service, Transaction
from todos.profiles.models import Profile, ProfilePublic, ProfileUpdate
from todos.reminders.ledger import ReminderLedger
from todos.series.models import LIVE_STATUSES, Series
from todos.series.recurrence import RecurrenceError
from todos.series.recurrence.engine import zone_of
from todos.tasks.models import Task, TaskStatus


@dataclass(frozen=True)
class Personal:
    """What the profile and the token say together about one person."""

    # Where reminders go, and the zone their emails show times in.
    email: str | None
    timezone: str | None
    # A new series' zone when the request names none.
    series_timezone: str
    # A new task's reminders when it has a due date and asks for none.
    default_reminders: list[dict[str, Any]]


def personal(session: Session, user: User) -> Personal:
    profile = session.get(Profile, user.id)
    token_zone = user.timezone if user.timezone and _known(user.timezone) else None
    if profile is None:
        return Personal(user.email, user.timezone, token_zone or "UTC", [])
    return Personal(
        email=profile.email or user.email,
        timezone=profile.timezone or user.timezone,
        series_timezone=profile.timezone or token_zone or "UTC",
        default_reminders=list(profile.default_reminders),
    )


def _known(zone: str) -> bool:
    try:
        zone_of(zone)
    except RecurrenceError:
        return False
    return True


@dataclass(frozen=True)
class ProfileService(Service):
    ledger: ReminderLedger

    def personal(self, user: User) -> Personal:
        with self.uow.database.session() as session:
            return personal(session, user)

    def get_profile(self, user: User) -> ProfilePublic:
        with self.uow.database.session() as session:
            return _public(user, session.get(Profile, user.id))

    def put_profile(self, user: User, data: ProfileUpdate) -> ProfilePublic:
        """Replace the profile. A new address or zone applies to the person's
        pending tasks and live series at once; reminders that failed for want
        of an address are armed again."""
        now = self.clock()
        with self.uow.transaction() as tx:
            session = tx.session
            profile = session.get(Profile, user.id, with_for_update=True) or Profile(
                user_id=user.id, created_at=now
            )
            profile.timezone = data.timezone
            profile.email = data.email
            profile.default_reminders = [spec.model_dump(mode="json") for spec in data.default_reminders]
            profile.updated_at = now
            session.add(profile)
            session.flush()
            if data.email is not None:
                self._readdress(tx, user, data.email)
            if data.timezone is not None:
                _apply(session, user, "notify_timezone", data.timezone)
            return _public(user, profile)

    def _readdress(self, tx: Transaction, user: User, email: str) -> None:
        session = tx.session
        now = self.clock()
        unaddressed = list(
            session.exec(
                select(Task)
                .where(
                    Task.user_id == user.id,
                    Task.status == TaskStatus.pending,
                    col(Task.notify_email).is_(None),
                )
                .with_for_update()
            )
        )
        _apply(session, user, "notify_email", email)
        for task in unaddressed:
            session.refresh(task)
            sync = self.ledger.sync(session, task, now, retry_failed=True)
            tx.effects.jobs += sync.jobs
            self.ledger.emit_armed(session, task, sync)


def _apply(session: Session, user: User, name: str, value: str) -> None:
    """Set this delivery field on the person's pending tasks and on the
    template each live series' next occurrences copy."""
    session.execute(
        update(Task)
        .where(col(Task.user_id) == user.id, col(Task.status) == TaskStatus.pending)
        .values({name: value})
    )
    session.execute(
        update(Series)
        .where(col(Series.user_id) == user.id, col(Series.status).in_(LIVE_STATUSES))
        .values(template=col(Series.template).op("||")(func.jsonb_build_object(name, value)))
    )


def _public(user: User, profile: Profile | None) -> ProfilePublic:
    if profile is None:
        return ProfilePublic(user_id=user.id, updated_at=None)
    return ProfilePublic(
        user_id=user.id,
        timezone=profile.timezone,
        email=profile.email,
        default_reminders=profile.default_reminders,  # type: ignore[arg-type]
        updated_at=rfc3339(profile.updated_at),
    )
