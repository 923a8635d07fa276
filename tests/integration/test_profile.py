"""The person's profile on the real stack: GET/PUT /v1/me, a new series in
its zone, a task created with its default reminders (armed as real Dapr
jobs), and a 422 naming the field for what it cannot use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from devstack.stack import Stack
from tests.helpers import auth
from tests.integration.test_series import new_user

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_a_profile_set_gives_new_series_its_zone_and_new_tasks_its_reminders(
    client: httpx.Client, stack: Stack
) -> None:
    user = new_user()
    assert client.get("/v1/me", headers=auth(user)).json()["updated_at"] is None
    body = {
        "timezone": "Europe/Paris",
        "email": f"{user}@example.org",
        "default_reminders": [{"before": "PT20M"}],
    }

    stored = client.put("/v1/me", json=body, headers=auth(user))

    assert stored.status_code == 200, stored.text
    assert client.get("/v1/me", headers=auth(user)).json() == stored.json()
    due = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0).isoformat()
    series = client.post(
        "/v1/tasks",
        json={"title": "Water the plants", "due_at": due, "recurrence": {"rule": "daily"}},
        headers=auth(user),
    )
    assert series.status_code == 201, series.text
    assert series.json()["recurrence"]["timezone"] == "Europe/Paris"
    assert series.json()["reminders"] == [{"before": "PT20M", "at": None}]
    job = httpx.get(f"{stack.dapr_http_url}/v1.0/jobs/reminder-{series.json()['id']}-0", timeout=10)
    assert job.status_code == 200, job.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"email": "ada at example.org"}, "email"),
        ({"default_reminders": [{"at": "2030-01-01T09:00:00Z"}]}, "default_reminders"),
    ],
)
def test_a_profile_it_cannot_use_gets_422_naming_the_field(
    client: httpx.Client, body: dict[str, object], field: str
) -> None:
    response = client.put("/v1/me", json=body, headers=auth(new_user()))

    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"{field}")
