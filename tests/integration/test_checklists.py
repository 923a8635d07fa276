"""Checklists on the real stack: a PATCH replaces the list and the task's
history records the change; the series' next occurrence, created by the
real workflow, brings the list back unticked."""

from __future__ import annotations

import httpx
import pytest

from devstack.stack import Stack
from tests.helpers import auth
from tests.integration.support import history, wait_until
from tests.integration.test_series import complete, new_user, occurrence, tomorrow_at

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

STEPS = [{"text": "Sort the glass", "done": False}, {"text": "Take out the paper", "done": False}]


def test_a_ticked_checklist_is_in_the_history_and_comes_back_unticked(
    client: httpx.Client, stack: Stack
) -> None:
    user = new_user()
    due = tomorrow_at(19)
    created = client.post(
        "/v1/tasks",
        json={
            "title": "Recycling",
            "due_at": due.isoformat(),
            "recurrence": {"rule": "weekly", "timezone": str(due.tzinfo)},
            "checklist": STEPS,
        },
        headers=auth(user),
    )
    assert created.status_code == 201, created.text
    first = created.json()
    ticked = [{**STEPS[0], "done": True}, STEPS[1]]

    patched = client.patch(f"/v1/tasks/{first['id']}", json={"checklist": ticked}, headers=auth(user))

    assert patched.status_code == 200, patched.text
    assert patched.json()["checklist"] == ticked
    with httpx.Client(base_url=stack.audit_url, timeout=30) as audit:

        def changed() -> list[dict[str, object]] | None:
            found = [e for e in history(audit, user, first["id"]) if e["event_type"] == "task.updated"]
            return found or None

        update = wait_until(changed, timeout=60, what="the checklist change in the history")[-1]
    assert update["payload"]["changes"]["checklist"] == {"old": STEPS, "new": ticked}  # type: ignore[index]
    complete(client, user, first["id"])
    assert occurrence(client, user, first["series_id"], 2)["checklist"] == STEPS
