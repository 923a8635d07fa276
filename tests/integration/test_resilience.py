"""Crashes and outages on a stack of its own (these tests break processes)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from devstack.stack import Stack
from tests.helpers import auth
from tests.integration.support import running_stack, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def fresh_stack() -> Iterator[Stack]:
    with running_stack("resilience") as running:
        yield running


@pytest.fixture
def http(fresh_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fresh_stack.app_url, timeout=30) as client:
        yield client


def recurring_task(http: httpx.Client, user: str) -> dict[str, str]:
    due = datetime.now(ZoneInfo("Europe/Paris")).replace(microsecond=0) + timedelta(days=1)
    response = http.post(
        "/v1/tasks",
        json={
            "title": "Backup",
            "due_at": due.isoformat(),
            "recurrence": {"rule": "daily", "timezone": "Europe/Paris"},
        },
        headers=auth(user),
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def occurrences(http: httpx.Client, user: str, series_id: str) -> list[int]:
    try:
        response = http.get("/v1/tasks", params={"series_id": series_id}, headers=auth(user))
    except httpx.TransportError:
        return []
    if response.status_code != 200:
        return []
    return sorted(t["occurrence_index"] for t in response.json()["items"])


def workflow_status(http: httpx.Client, user: str, series_id: str) -> str | None:
    response = http.get(f"/v1/series/{series_id}", headers=auth(user))
    return response.json()["workflow"]["runtime_status"] if response.status_code == 200 else None


def test_waiting_workflow_survives_an_app_kill(fresh_stack: Stack, http: httpx.Client) -> None:
    """A workflow waiting for its event when the app dies carries on after the
    restart: its state lives in the sidecar's state store, not in the app."""
    user = f"user-{uuid.uuid4().hex[:8]}"
    task = recurring_task(http, user)
    sid = task["series_id"]
    wait_until(lambda: workflow_status(http, user, sid) == "RUNNING", what="the workflow to wait")

    fresh_stack.process("app-api").kill()
    fresh_stack.restart("app-api")

    assert http.post(f"/v1/tasks/{task['id']}/complete", headers=auth(user)).status_code == 200
    wait_until(
        lambda: occurrences(http, user, sid) == [1, 2], timeout=60, what="occurrence #2 after the restart"
    )


def test_app_killed_right_after_a_completion_creates_exactly_one_next_task(
    fresh_stack: Stack, http: httpx.Client
) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    task = recurring_task(http, user)
    sid = task["series_id"]
    wait_until(lambda: workflow_status(http, user, sid) == "RUNNING", what="the workflow to wait")

    assert http.post(f"/v1/tasks/{task['id']}/complete", headers=auth(user)).status_code == 200
    fresh_stack.process("app-api").kill()  # mid-step: the activity may or may not have run
    fresh_stack.restart("app-api")

    wait_until(lambda: occurrences(http, user, sid) == [1, 2], timeout=60, what="occurrence #2")
    time.sleep(5)  # a duplicate would show up by now
    assert occurrences(http, user, sid) == [1, 2]


def test_readyz_reports_a_database_outage_and_recovers(fresh_stack: Stack, http: httpx.Client) -> None:
    if "postgres" not in fresh_stack.processes:
        pytest.skip("DATABASE_URL points at an external PostgreSQL the stack cannot stop")
    user = f"user-{uuid.uuid4().hex[:8]}"
    assert http.get("/readyz").status_code == 200

    fresh_stack.process("postgres").stop()
    try:
        not_ready = http.get("/readyz")
        assert not_ready.status_code == 503
        assert "database" in not_ready.json()["detail"]
        assert http.get("/healthz").status_code == 200  # alive, just not ready
        during = http.get("/v1/tasks", headers=auth(user))
        assert during.status_code == 503, during.text
        assert during.headers["content-type"] == "application/problem+json"
    finally:
        fresh_stack.restart("postgres")

    wait_until(lambda: http.get("/readyz").status_code == 200, timeout=30, what="/readyz to recover")
    created = http.post("/v1/tasks", json={"title": "after the outage"}, headers=auth(user))
    assert created.status_code == 201, created.text
