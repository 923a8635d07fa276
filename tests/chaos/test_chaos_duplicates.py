"""The same completion, ten times at once: through the REST API on one task,
and as ten `task_completed` events raised at the workflow through the Dapr
workflow API (a redelivering client). Either way: one next task."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from bench.load import execute
from devstack.stack import Stack
from tests.chaos.support import Scale, create_series, new_user, one_step_each
from tests.helpers import auth

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(1200)]

TIMES = 10


def at_once(calls: list[Callable[[], int]]) -> Counter[int]:
    """Run every call on its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], int]) -> int:
        barrier.wait(30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return Counter(pool.map(run, calls))


def series_count(scale: Scale) -> int:
    """Series each hit TIMES times at once: a tenth of the scale's completions."""
    return max(1, scale.completions // TIMES)


def each_ten_times_at_once(
    stack: Stack,
    scale: Scale,
    ledger: Callable[[dict[str, object]], None],
    tasks: list[dict[str, Any]],
    base_url: str,
    call: Callable[[httpx.Client, dict[str, Any]], int],
    accepted: int,
) -> None:
    """`call` TIMES at once per task (its answer must be `accepted`), then
    exactly one step per series."""
    answers: Counter[int] = Counter()
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for task in tasks:
            answers += at_once([lambda task=task: call(client, task)] * TIMES)
    steps = one_step_each(stack, [t["series_id"] for t in tasks], timeout=scale.recovery_timeout)
    ledger({"series": len(tasks), "times_each": TIMES, "answers": dict(answers), **steps})

    assert answers == Counter({accepted: TIMES * len(tasks)})
    assert steps["next_tasks"] == len(tasks) and steps["extra"] == 0 and steps["inconsistent"] == 0, steps


def test_ten_concurrent_completions_of_one_task_make_one_next_task(
    chaos_stack: Stack, scale: Scale, ledger: Callable[[dict[str, object]], None]
) -> None:
    user = new_user("complete-x10")
    tasks = create_series(chaos_stack, user, series_count(scale))

    def complete(client: httpx.Client, task: dict[str, Any]) -> int:
        return client.post(f"/v1/tasks/{task['id']}/complete", headers=auth(user)).status_code

    each_ten_times_at_once(chaos_stack, scale, ledger, tasks, chaos_stack.app_url, complete, 200)


def test_ten_concurrent_task_completed_events_make_one_next_task(
    chaos_stack: Stack, scale: Scale, ledger: Callable[[dict[str, object]], None]
) -> None:
    """The completion is committed without its event (as if the app died
    right after the commit), then the event arrives ten times at once."""
    user = new_user("event-x10")
    tasks = create_series(chaos_stack, user, series_count(scale))
    completed = execute(
        chaos_stack.database_url,
        "UPDATE tasks SET status = 'completed', completed_at = now(), updated_at = now() WHERE id = ANY(%s)",
        [uuid.UUID(t["id"]) for t in tasks],
    )
    assert completed == len(tasks)

    def raise_event(dapr: httpx.Client, task: dict[str, Any]) -> int:
        url = f"/v1.0/workflows/dapr/series-{task['series_id']}/raiseEvent/task_completed"
        return dapr.post(url, json={"task_id": task["id"], "occurrence_index": 1}).status_code

    each_ten_times_at_once(chaos_stack, scale, ledger, tasks, chaos_stack.dapr_http_url, raise_event, 202)
