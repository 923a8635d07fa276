"""Upgrades keep every series: an earlier commit of this project (devstack.checkout: its tree and
its locked dependencies) runs the stack and leaves series in every state; then today's code
carries on with the same PostgreSQL, actor state and scheduler data.

- Stop-start (a deploy that replaces everything): the old stack stops, today's starts on its run
  directory, migrates, and every series moves on from where it was, each occurrence once.
- Mixed (what a rolling update does): two api replicas on the old code, today's migrations run
  (the chart's pre-upgrade hook), then one replica at a time is replaced by today's code; while
  one of each runs, series (old ones and new ones) step on either, each occurrence once.

PINNED is the last commit before issue 25 changed what the workflow waits for (task_reopened),
the create activity's checks and the schema (0007-0009): the upgrade crosses all three. When a
later change touches the workflow, an activity's input or output, or the schema, move PINNED to
the commit where the previous issue landed (CONTRIBUTING.md)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devstack.checkout import current, of_commit
from devstack.roles import API, AUDIT
from devstack.smtp_sink import read_mail
from devstack.stack import Stack
from tests.helpers import auth
from tests.integration.support import daily_series, running_stack, step_all, sweeper_repairs, wait_until
from tests.integration.test_series import (
    complete,
    create_recurring,
    local,
    new_user,
    occurrence,
    series,
    tasks_of,
    tomorrow_at,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

PINNED = "f90fac1c45d4606d371f3789fe314fc2f9a2d0a7"

# Armed last before the old stack stops, due once today's runs: sent by today's code (or, if the
# start takes longer, as soon as the scheduler is back).
REMINDER_AHEAD = timedelta(seconds=40)


@dataclass
class Seeded:
    user: str
    series_id: str
    task: dict[str, Any]


def post(client: httpx.Client, user: str, path: str, **body: Any) -> dict[str, Any]:
    response = client.post(path, headers=auth(user), json=body or None)
    assert response.status_code in (200, 201), response.text
    return response.json()


def once_each(client: httpx.Client, seeded: Seeded) -> list[int]:
    """The series' listed occurrence numbers, failing if any is there twice."""
    indexes = [t["occurrence_index"] for t in tasks_of(client, seeded.user, seeded.series_id)]
    doubled = [index for index, times in Counter(indexes).items() if times > 1]
    assert not doubled, f"series {seeded.series_id}: occurrences {doubled} exist twice"
    return sorted(indexes)


def assert_no_workflow_failed(stack: Stack) -> None:
    """No series' workflow ended in failure (as a history that no longer replays does) and was
    restarted by the sweeper, on any api replica: the sweeper heals that, so the steps alone
    would not show it."""
    restarted = sweeper_repairs(stack).get("restarted", 0)
    assert restarted == 0, f"the sweeper restarted {restarted} workflows"


def seed_every_state(client: httpx.Client) -> dict[str, Seeded]:
    """On the old code: a series in each state the workflow has, and a reminder still to fire."""

    def new(rule: str = "daily", hour: int = 9) -> Seeded:
        user = new_user()
        task = create_recurring(client, user, rule, tomorrow_at(hour))
        return Seeded(user, task["series_id"], task)

    probe = new()
    # The old code is what runs: it has no reopen route yet.
    missing = client.post(f"/v1/tasks/{probe.task['id']}/reopen", headers=auth(probe.user))
    assert missing.status_code in (404, 405), missing.text
    seeded = {name: new() for name in ("waiting", "stepped", "paused", "skipped", "rule_changed", "stopped")}
    seeded["finished"] = new("FREQ=DAILY;COUNT=2", 8)

    s = seeded["stepped"]
    complete(client, s.user, s.task["id"])
    s.task = occurrence(client, s.user, s.series_id, 2)
    s = seeded["paused"]
    post(client, s.user, f"/v1/series/{s.series_id}/pause")
    wait_until(
        lambda: (series(client, s.user, s.series_id)["workflow"]["custom_status"] or {}).get("paused"),
        what="the old workflow to report paused",
    )
    s = seeded["skipped"]
    post(client, s.user, f"/v1/series/{s.series_id}/skip")
    s.task = occurrence(client, s.user, s.series_id, 2)
    s = seeded["rule_changed"]
    changed = client.patch(
        f"/v1/tasks/{s.task['id']}",
        json={"recurrence": {"rule": "weekly", "timezone": "America/New_York"}},
        headers=auth(s.user),
    )
    assert changed.status_code == 200, changed.text
    s = seeded["stopped"]
    post(client, s.user, f"/v1/series/{s.series_id}/stop")
    s = seeded["finished"]
    complete(client, s.user, s.task["id"])
    complete(client, s.user, occurrence(client, s.user, s.series_id, 2)["id"])
    wait_until(
        lambda: series(client, s.user, s.series_id)["status"] == "finished", what="the COUNT=2 series to end"
    )

    s = seeded["reminded"] = new()
    at = datetime.now(UTC) + REMINDER_AHEAD
    s.task = post(
        client,
        s.user,
        "/v1/tasks",
        title="Renew the passport",
        due_at=(at + timedelta(hours=1)).isoformat(),
        reminders=[{"at": at.isoformat()}],
    )
    return seeded


def carry_on(client: httpx.Client, stack: Stack, seeded: dict[str, Seeded], upgraded_at: datetime) -> None:
    """On today's code (started at `upgraded_at`): each series moves on from where the old code
    left it, and the reminder the old code armed is sent, once, by today's."""
    for name in ("waiting", "stepped", "skipped", "rule_changed"):
        s = seeded[name]
        complete(client, s.user, s.task["id"])
        index = s.task["occurrence_index"] + 1
        following = occurrence(client, s.user, s.series_id, index, timeout=60)
        days = 7 if name == "rule_changed" else 1
        assert local(following["due_at"]) == local(s.task["due_at"]) + timedelta(days=days), name
        assert once_each(client, s) == list(range(1, index + 1)), name
        s.task = following

    s = seeded["paused"]
    post(client, s.user, f"/v1/series/{s.series_id}/resume")
    complete(client, s.user, s.task["id"])
    occurrence(client, s.user, s.series_id, 2, timeout=60)
    assert once_each(client, s) == [1, 2]

    # Reopen is new in today's code; the occurrence the old code created before it can reopen once
    # today's step has recorded the anchor to step back to.
    s = seeded["stepped"]
    before = s.task
    previous = next(t for t in tasks_of(client, s.user, s.series_id) if t["occurrence_index"] == 2)
    assert client.post(f"/v1/tasks/{previous['id']}/reopen", headers=auth(s.user)).status_code == 200
    complete(client, s.user, previous["id"])
    again = occurrence(client, s.user, s.series_id, 3, timeout=60)
    assert again["due_at"] == before["due_at"] and again["id"] != before["id"]
    assert once_each(client, s) == [1, 2, 3]

    for name, status in (("stopped", "stopped"), ("finished", "finished")):
        s = seeded[name]
        assert series(client, s.user, s.series_id)["status"] == status
    assert tasks_of(client, seeded["stopped"].user, seeded["stopped"].series_id) == []
    assert once_each(client, seeded["finished"]) == [1, 2]

    s = seeded["reminded"]
    at = datetime.fromisoformat(s.task["reminders"][0]["at"])
    address = f"{s.user}@example.com"

    def mail() -> list[dict[str, Any]]:
        return [m for m in read_mail(stack.smtp_dir) if address in m["rcpt_tos"]]

    (sent,) = wait_until(mail, timeout=120, what="the reminder armed by the old code")
    assert datetime.fromtimestamp(sent["received_ts"], UTC) >= max(at - timedelta(seconds=1), upgraded_at)
    assert_no_workflow_failed(stack)


@pytest.fixture
def old_code_stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    replicas = getattr(request, "param", 1)
    with running_stack("upgrade", code=of_commit(PINNED), api_replicas=replicas) as stack:
        yield stack


def test_a_stop_start_upgrade_keeps_every_series(old_code_stack: Stack) -> None:
    with httpx.Client(base_url=old_code_stack.app_url, timeout=30) as client:
        seeded = seed_every_state(client)
    old_code_stack.stop()

    upgraded_at = datetime.now(UTC)
    with (
        Stack(replace(old_code_stack.config, code=current())) as upgraded,
        httpx.Client(base_url=upgraded.app_url, timeout=30) as client,
    ):
        carry_on(client, upgraded, seeded, upgraded_at)


@pytest.mark.parametrize("old_code_stack", [2], indirect=True)
def test_a_rolling_upgrade_steps_every_series_once_while_versions_mix(old_code_stack: Stack) -> None:
    stack = old_code_stack
    today = current()
    with httpx.Client(base_url=stack.app_url, timeout=30) as client:
        old = daily_series(client, "before", 16, tomorrow_at(9))
        step_all(client, old, 2)

        stack.migrate(today)
        assert_no_workflow_failed(stack)
        stack.roll(API, today)
        # One replica of each version: old and new series step on whichever placement gives them.
        mixed = daily_series(client, "mixed", 8, tomorrow_at(10))
        step_all(client, old, 3)
        step_all(client, mixed, 2)

        assert_no_workflow_failed(stack)
        for role in (replace(API, replica=2), AUDIT):
            stack.roll(role, today)
        step_all(client, old, 4)
        step_all(client, mixed, 3)
        assert_no_workflow_failed(stack)
    assert {stack.code_of(role).label for role in stack.roles()} == {today.label}
