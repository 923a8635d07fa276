"""One date of a series steered ahead of time, on the real stack: what is
coming, a date skipped and one moved (EXDATE, RDATE), the real workflow
creating exactly what the list showed, and the changes in the history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from devstack.stack import Stack
from tests.helpers import auth
from tests.integration.support import history, wait_until
from tests.integration.test_series import (
    complete,
    create_recurring,
    local,
    new_user,
    occurrence,
    tomorrow_at,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def coming(client: httpx.Client, user: str, series_id: str, limit: int) -> dict[str, object]:
    response = client.get(f"/v1/series/{series_id}/occurrences", params={"limit": limit}, headers=auth(user))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_date_skipped_and_one_moved_ahead_are_listed_created_and_recorded(
    client: httpx.Client, stack: Stack
) -> None:
    user = new_user()
    first = create_recurring(client, user, "daily", tomorrow_at(9))
    sid = first["series_id"]
    listed = coming(client, user, sid, 4)["occurrences"]
    assert [(o["status"], o["index"]) for o in listed] == [  # type: ignore[index]
        ("current", 1),
        ("planned", 2),
        ("planned", 3),
        ("planned", 4),
    ]
    day = [o["due_at"] for o in listed]  # type: ignore[index]

    skipped = client.post(f"/v1/series/{sid}/skip", json={"due_at": day[1]}, headers=auth(user))
    assert skipped.status_code == 200, skipped.text
    # `to` without an offset: 14:00 wall time in the series' zone on the third day.
    to_wall = local(day[2]).replace(hour=14, tzinfo=None)
    moved = client.post(
        f"/v1/series/{sid}/move", json={"due_at": day[2], "to": to_wall.isoformat()}, headers=auth(user)
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["exdates"] == [day[1], day[2]]
    moved_to = moved.json()["rdates"][0]
    assert local(moved_to).replace(tzinfo=None) == to_wall

    now = coming(client, user, sid, 3)
    assert [(o["due_at"], o["status"], o["index"]) for o in now["occurrences"]] == [  # type: ignore[attr-defined]
        (day[0], "current", 1),
        (moved_to, "moved", 2),
        (day[3], "planned", 3),
    ]
    assert now["skipped"] == [day[1], day[2]]

    # The workflow creates what the list showed: the moved date, then the rule again.
    complete(client, user, first["id"])
    second = occurrence(client, user, sid, 2)
    assert second["due_at"] == moved_to
    complete(client, user, second["id"])
    assert occurrence(client, user, sid, 3)["due_at"] == day[3]

    # Each change of the dates is in the current occurrence's history, its recurrence changed.
    with httpx.Client(base_url=stack.audit_url, timeout=30) as audit:

        def updates() -> list[dict[str, Any]] | None:
            found = [e for e in history(audit, user, first["id"]) if e["event_type"] == "task.updated"]
            return found if len(found) >= 2 else None

        changes = wait_until(updates, timeout=60, what="two updates in the history of occurrence #1")
    assert [c["payload"]["changes"]["recurrence"]["new"]["exdates"] for c in changes] == [
        [day[1]],
        [day[1], day[2]],
    ]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("skip", {"due_at": "2020-01-01T00:00:00Z"}, "due_at"),
        ("move", {"due_at": "2020-01-01T00:00:00Z", "to": "2030-01-01T09:00:00"}, "due_at"),
        ("move", {"due_at": "not a time", "to": "2030-01-01T09:00:00"}, "due_at"),
        ("move", {"due_at": "2030-01-01T09:00:00Z"}, "to"),
    ],
)
def test_dates_that_are_not_the_series_get_422_naming_the_field(
    client: httpx.Client, path: str, body: dict[str, str], field: str
) -> None:
    user = new_user()
    sid = create_recurring(client, user, "daily", tomorrow_at(9))["series_id"]

    response = client.post(f"/v1/series/{sid}/{path}", json=body, headers=auth(user))

    assert response.status_code == 422, response.text
    assert field in response.text


def test_a_move_onto_a_time_before_the_current_occurrence_names_to(client: httpx.Client) -> None:
    user = new_user()
    first = create_recurring(client, user, "daily", tomorrow_at(9))
    ahead = coming(client, user, first["series_id"], 3)["occurrences"][2]["due_at"]  # type: ignore[index]
    before = (local(first["due_at"]) - timedelta(hours=2)).isoformat()

    response = client.post(
        f"/v1/series/{first['series_id']}/move", json={"due_at": ahead, "to": before}, headers=auth(user)
    )

    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("to: ")
