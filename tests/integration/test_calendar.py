"""The calendar feed on the real stack: its secret address, fetched without
a bearer token as a calendar app does, conditional requests, events on
request, and the address gone once replaced or revoked."""

from __future__ import annotations

import httpx
import icalendar
import pytest

from tests.helpers import auth
from tests.integration.test_series import create_recurring, new_user, tomorrow_at

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_a_calendar_app_reads_the_feed_by_its_address_alone(client: httpx.Client) -> None:
    user = new_user()
    series = create_recurring(client, user, "weekdays", tomorrow_at(9))
    created = client.post("/v1/calendar/feed", headers=auth(user))
    assert created.status_code == 201, created.text
    url = created.json()["url"]

    with httpx.Client(timeout=30) as app:  # no Authorization header
        fetched = app.get(url)
        again = app.get(url, headers={"If-None-Match": fetched.headers["etag"]})
        as_events = app.get(created.json()["events_url"])

    assert fetched.status_code == 200, fetched.text
    assert fetched.headers["content-type"].startswith("text/calendar")
    assert "last-modified" in fetched.headers
    (todo,) = icalendar.Calendar.from_ical(fetched.text).walk("VTODO")
    assert str(todo["UID"]) == f"series-{series['series_id']}@todo-workflows"
    assert todo["RRULE"].to_ical() == b"FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"
    assert str(todo["DTSTART"].params["TZID"]) == "America/New_York"
    assert again.status_code == 304
    assert len(icalendar.Calendar.from_ical(as_events.text).walk("VEVENT")) == 1


def test_a_replaced_or_revoked_feed_address_answers_404(client: httpx.Client) -> None:
    user = new_user()
    old = client.post("/v1/calendar/feed", headers=auth(user)).json()["url"]
    new = client.post("/v1/calendar/feed", headers=auth(user)).json()["url"]

    assert httpx.get(old, timeout=30).status_code == 404
    assert httpx.get(new, timeout=30).status_code == 200
    assert client.delete("/v1/calendar/feed", headers=auth(user)).status_code == 204
    assert httpx.get(new, timeout=30).status_code == 404
    assert client.post("/v1/calendar/feed").status_code == 401
