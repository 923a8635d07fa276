"""Reopening on the real stack: a one-off task pending again, and the latest
occurrence of a series current again, the untouched one created after it
withdrawn, the real workflow following and creating it again once the
reopened one is done, every step in the histories."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from devstack.stack import Stack
from tests.helpers import auth
from tests.integration.support import history, wait_until
from tests.integration.test_series import (
    complete,
    create_recurring,
    new_user,
    occurrence,
    series,
    tasks_of,
    tomorrow_at,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def reopen(client: httpx.Client, user: str, task_id: str) -> httpx.Response:
    return client.post(f"/v1/tasks/{task_id}/reopen", headers=auth(user))


def events_of(stack: Stack, user: str, task_id: str, event_type: str) -> list[dict[str, Any]]:
    """The task's history events of this type, once the audit log holds at least one."""
    with httpx.Client(base_url=stack.audit_url, timeout=30) as audit:

        def found() -> list[dict[str, Any]] | None:
            matching = [e for e in history(audit, user, task_id) if e["event_type"] == event_type]
            return matching or None

        return wait_until(found, timeout=60, what=f"{event_type} in the history of task {task_id}")  # type: ignore[no-any-return]


def test_a_completed_one_off_is_pending_again_and_its_history_says_so(
    client: httpx.Client, stack: Stack
) -> None:
    user = new_user()
    created = client.post("/v1/tasks", json={"title": "Call the bank"}, headers=auth(user))
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    complete(client, user, task_id)

    reopened = reopen(client, user, task_id)

    assert reopened.status_code == 200, reopened.text
    assert (reopened.json()["status"], reopened.json()["completed_at"]) == ("pending", None)
    assert reopen(client, user, task_id).json() == reopened.json()
    updates = events_of(stack, user, task_id, "task.updated")
    assert updates[-1]["payload"]["changes"]["status"] == {"old": "completed", "new": "pending"}


def test_the_latest_occurrence_reopened_withdraws_the_next_and_the_workflow_follows(
    client: httpx.Client, stack: Stack
) -> None:
    user = new_user()
    first = create_recurring(client, user, "daily", tomorrow_at(9))
    sid = first["series_id"]
    complete(client, user, first["id"])
    second = occurrence(client, user, sid, 2)

    reopened = reopen(client, user, first["id"])

    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["status"] == "pending"
    assert [t["id"] for t in tasks_of(client, user, sid)] == [first["id"]]
    shown = series(client, user, sid)
    assert (shown["current_task"]["id"], shown["occurrence_index"]) == (first["id"], 1)
    # The workflow read the series again (woken by task_reopened): it waits on #1.
    wait_until(
        lambda: (
            (series(client, user, sid)["workflow"]["custom_status"] or {}).get("current_task_id")
            == first["id"]
        ),
        what="the workflow to wait on the reopened occurrence",
    )
    withdrawn = events_of(stack, user, second["id"], "task.deleted")
    assert withdrawn[0]["payload"]["withdrawn_for"] == first["id"]

    # Done again: the series creates the occurrence after it again, due when it was.
    complete(client, user, first["id"])
    again = occurrence(client, user, sid, 2)
    assert again["due_at"] == second["due_at"] and again["id"] != second["id"]


def test_an_occurrence_whose_next_one_was_edited_gets_409_saying_why(client: httpx.Client) -> None:
    user = new_user()
    first = create_recurring(client, user, "daily", tomorrow_at(9))
    complete(client, user, first["id"])
    second = occurrence(client, user, first["series_id"], 2)
    edited = client.patch(
        f"/v1/tasks/{second['id']}", json={"title": "Notes, with the demo"}, headers=auth(user)
    )
    assert edited.status_code == 200, edited.text

    refused = reopen(client, user, first["id"])

    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"].startswith("task_id: occurrence #2")
    assert "edited" in refused.json()["detail"]
    assert len(tasks_of(client, user, first["series_id"])) == 2
