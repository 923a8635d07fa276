"""Dapr's HA control plane locally (--ha): three placement servers in one
Raft group and three schedulers in one etcd cluster. The placement leader
killed (-9), then one scheduler: every series still steps exactly once, and
both come back."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from devstack.stack import Stack
from tests.helpers import auth
from tests.integration.support import daily_series, placement_leader, running_stack, step_all
from tests.integration.test_series import tomorrow_at

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

SERIES = 12


@pytest.fixture(scope="module")
def highly_available() -> Iterator[Stack]:
    with running_stack("ha", ha=True) as stack:
        yield stack


def occurrences(client: httpx.Client, series: list[tuple[str, str]]) -> list[int]:
    counts = []
    for user, series_id in series:
        response = client.get("/v1/tasks", params={"series_id": series_id, "limit": 200}, headers=auth(user))
        counts.append(len(response.json()["items"]))
    return counts


def test_the_placement_leader_and_a_scheduler_killed_lose_no_step(highly_available: Stack) -> None:
    stack = highly_available
    assert [p for p in stack.processes if p.startswith(("placement", "scheduler"))] == [
        "placement",
        "placement-2",
        "placement-3",
        "scheduler",
        "scheduler-2",
        "scheduler-3",
    ]
    with httpx.Client(base_url=stack.app_url, timeout=30) as client:
        series = daily_series(client, "ha", SERIES, tomorrow_at(9))
        step_all(client, series, 2)

        first_leader = placement_leader(stack)
        stack.process(first_leader).kill()
        assert placement_leader(stack) != first_leader
        step_all(client, series, 3)

        stack.process("scheduler-2").kill()
        step_all(client, series, 4)

        stack.restart(first_leader)
        stack.restart("scheduler-2")
        step_all(client, series, 5)
        # Exactly once: five tasks per series, none doubled by the failovers.
        assert occurrences(client, series) == [5] * SERIES
