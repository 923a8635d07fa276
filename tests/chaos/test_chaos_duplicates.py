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

from devstack.stack import Stack
from tests.chaos.support import Scale, create_series, execute, new_user, one_step_each
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


def test_ten_concurrent_completions_of_one_task_make_one_next_task(
    chaos_stack: Stack, scale: Scale, ledger: Callable[[dict[str, object]], None]
) -> None:
    user = new_user("complete-x10")
    tasks = create_series(chaos_stack, user, series_count(scale))
    answers: Counter[int] = Counter()
    with httpx.Client(base_url=chaos_stack.app_url, timeout=60) as client:

        def complete(task: dict[str, Any]) -> Callable[[], int]:
            return lambda: client.post(f"/v1/tasks/{task['id']}/complete", headers=auth(user)).status_code

        for task in tasks:
            answers += at_once([complete(task)] * TIMES)
    steps = one_step_each(chaos_stack, [t["series_id"] for t in tasks], timeout=scale.recovery_timeout)
    ledger({"series": len(tasks), "requests_each": TIMES, "answers": dict(answers), **steps})

    assert answers == Counter({200: TIMES * len(tasks)})
    assert steps["next_tasks"] == len(tasks) and steps["extra"] == 0 and steps["inconsistent"] == 0, steps


def test_ten_concurrent_task_completed_events_make_one_next_task(
    chaos_stack: Stack, scale: Scale, ledger: Callable[[dict[str, object]], None]
) -> None:
    """The completion is committed without its event (as if the app died
    right after the commit), then the event arrives ten times at once."""
    user = new_user("event-x10")
    tasks = create_series(chaos_stack, user, series_count(scale))
    completed = execute(
        chaos_stack,
        "UPDATE tasks SET status = 'completed', completed_at = now(), updated_at = now() WHERE id = ANY(%s)",
        [uuid.UUID(t["id"]) for t in tasks],
    )
    assert completed == len(tasks)
    answers: Counter[int] = Counter()
    with httpx.Client(base_url=chaos_stack.dapr_http_url, timeout=60) as dapr:

        def raise_event(task: dict[str, Any]) -> Callable[[], int]:
            url = f"/v1.0/workflows/dapr/series-{task['series_id']}/raiseEvent/task_completed"
            return lambda: dapr.post(url, json={"task_id": task["id"], "occurrence_index": 1}).status_code

        for task in tasks:
            answers += at_once([raise_event(task)] * TIMES)
    steps = one_step_each(chaos_stack, [t["series_id"] for t in tasks], timeout=scale.recovery_timeout)
    ledger({"series": len(tasks), "events_each": TIMES, "answers": dict(answers), **steps})

    assert answers == Counter({202: TIMES * len(tasks)})
    assert steps["next_tasks"] == len(tasks) and steps["extra"] == 0 and steps["inconsistent"] == 0, steps
