"""The calendar feed on the real database, read by independent libraries
(icalendar, recurring-ical-events): what it holds, its address's life, and
for random series (rules, zones with DST, skipped and moved dates) the dates
a calendar app expands from it are the ones GET /v1/series/{id}/occurrences
lists."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from api.deps import Services
from tests.service.conftest import Clock
from tests.service.support import create
from todos.core.errors import InvalidInput, NotFound
from todos.core.users import User

pytestmark = [pytest.mark.service, pytest.mark.timeout(600)]

RULES = (
    "daily",
    "weekdays",
    "every other tuesday",
    "every 3 days",
    "FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=12",
    "FREQ=MONTHLY;BYDAY=-1FR",
    "FREQ=MONTHLY;BYMONTHDAY=31",
    "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
    "FREQ=YEARLY;BYMONTH=3,10;BYDAY=-1SU",
    "FREQ=HOURLY;INTERVAL=7",
    "FREQ=DAILY;INTERVAL=2;COUNT=9",
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=SA,SU;UNTIL=20290101T000000Z",
)
# Zones whose clocks change (both hemispheres, a 30-minute shift, a 45-minute offset) and one that does not.
ZONES = (
    "America/New_York",
    "Europe/London",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Pacific/Chatham",
    "Asia/Tokyo",
)


def serve(services: Services, user: User, **options: Any) -> icalendar.Calendar:
    token, _ = services.calendar.rotate(user)
    return icalendar.Calendar.from_ical(
        services.calendar.serve(token, **{"as_events": False, **options}).body
    )


def expanded(feed: icalendar.Calendar, uid: str, start: datetime, end: datetime) -> list[datetime]:
    found = recurring_ical_events.of(feed, components=["VTODO", "VEVENT"]).between(start, end)
    return sorted(
        component["DTSTART"].dt.astimezone(UTC) for component in found if str(component["UID"]) == uid
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rule=st.sampled_from(RULES),
    zone=st.sampled_from(ZONES),
    days_ahead=st.integers(1, 400),
    wall=st.sampled_from([(9, 0), (1, 30), (2, 30), (23, 45), (0, 0)]),
    listed=st.integers(5, 25),
    skips=st.sets(st.integers(1, 8), max_size=3),
    moves=st.sets(st.integers(1, 8), max_size=2),
    moved_by=st.integers(-20, 20),
)
def test_the_dates_a_calendar_expands_are_the_ones_the_series_lists(
    services: Services,
    clock: Clock,
    rule: str,
    zone: str,
    days_ahead: int,
    wall: tuple[int, int],
    listed: int,
    skips: set[int],
    moves: set[int],
    moved_by: int,
) -> None:
    user = User(id=f"feed-{uuid.uuid4().hex[:10]}", email="ada@example.com")
    local_day = (clock.now + timedelta(days=days_ahead)).astimezone(ZoneInfo(zone))
    due = local_day.replace(hour=wall[0], minute=wall[1], second=0, microsecond=0, tzinfo=None)
    first = create(services, user, due_at=due.replace(tzinfo=ZoneInfo(zone)).isoformat(),
                   recurrence={"rule": rule, "timezone": zone})  # fmt: skip
    assert first.series_id is not None
    ahead = [o.due_at for o in services.series.list_occurrences(user, first.series_id, 10).occurrences]
    for n in sorted(skips - moves):
        if n < len(ahead):
            services.series.skip_date(user, first.series_id, datetime.fromisoformat(ahead[n]))
    for n in sorted(moves):
        if n < len(ahead):
            moved = datetime.fromisoformat(ahead[n]) + timedelta(hours=moved_by)
            # A move onto another occurrence, or before the current one, is refused (422 naming `to`).
            with contextlib.suppress(InvalidInput):
                services.series.move_date(user, first.series_id, datetime.fromisoformat(ahead[n]), moved)

    shown = [
        datetime.fromisoformat(o.due_at)
        for o in services.series.list_occurrences(user, first.series_id, listed).occurrences
    ]
    left_out = [datetime.fromisoformat(d) for d in services.series.get_series(user, first.series_id).exdates]
    assume(not _read_alike(shown, left_out, ZoneInfo(zone)))
    feed = serve(services, user)

    window = (shown[0] - timedelta(seconds=1), shown[-1] + timedelta(seconds=1))
    assert expanded(feed, f"series-{first.series_id}@todo-workflows", *window) == shown


def _read_alike(dates: list[datetime], left_out: list[datetime], zone: ZoneInfo) -> bool:
    """recurring-ical-events also matches an EXDATE by its wall reading in the other zone
    (util.to_recurrence_ids: the UTC reading and the local one), so it drops a date whose UTC
    reading is an excluded date's local reading, or the other way round: an artefact of that
    library, not of the feed (RFC 5545 compares instants). Such examples are left out."""

    def readings(moment: datetime) -> set[datetime]:
        return {moment.astimezone(UTC).replace(tzinfo=None), moment.astimezone(zone).replace(tzinfo=None)}

    return any(readings(date) & readings(out) for date in dates for out in left_out if date != out)


def test_a_one_off_task_is_a_to_do_with_its_alarms_and_as_an_event_on_request(
    services: Services, user: User, clock: Clock
) -> None:
    due = (clock.now + timedelta(days=2)).replace(microsecond=0)
    at = due - timedelta(days=1)
    task = create(
        services,
        user,
        title="Call the bank; ask, politely, about the fee",
        description="Line one\nline two",
        due_at=due.isoformat(),
        tags=["money"],
        reminders=[{"before": "PT15M"}, {"at": at.isoformat()}],
    )
    done = create(services, user, title="Already done", due_at=due.isoformat())
    services.tasks.complete_task(user, done.id)
    create(services, user, title="No due date")

    todos = serve(services, user).walk("VTODO")
    events = serve(services, user, as_events=True).walk("VEVENT")

    assert [str(todo["SUMMARY"]) for todo in todos] == ["Call the bank; ask, politely, about the fee"]
    (todo,) = todos
    assert str(todo["UID"]) == f"task-{task.id}@todo-workflows"
    assert todo["DUE"].dt == due and str(todo["DESCRIPTION"]) == "Line one\nline two"
    assert todo["CATEGORIES"].cats == ["money"]
    triggers = [alarm["TRIGGER"] for alarm in todo.walk("VALARM")]
    assert triggers[0].dt == -timedelta(minutes=15) and triggers[0].params["RELATED"] == "END"
    assert triggers[1].dt == at
    (event,) = events
    assert event["DTSTART"].dt == due


def test_a_feed_address_replaced_or_revoked_is_gone_and_an_unchanged_feed_keeps_its_etag(
    services: Services, user: User, clock: Clock
) -> None:
    create(services, user, due_at=(clock.now + timedelta(days=1)).isoformat())
    old, _ = services.calendar.rotate(user)
    first = services.calendar.serve(old, as_events=False)
    clock.advance(minutes=5)
    assert services.calendar.serve(old, as_events=False).etag == first.etag

    new, _ = services.calendar.rotate(user)
    with pytest.raises(NotFound):
        services.calendar.serve(old, as_events=False)
    create(services, user, title="Another", due_at=(clock.now + timedelta(days=2)).isoformat())
    assert services.calendar.serve(new, as_events=False).etag != first.etag

    services.calendar.revoke(user)
    services.calendar.revoke(user)
    with pytest.raises(NotFound):
        services.calendar.serve(new, as_events=False)
