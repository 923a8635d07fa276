"""Helpers for integration tests (fixtures live in conftest.py)."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench import load
from devstack import kafka
from devstack.checkout import Checkout, current
from devstack.roles import API
from devstack.stack import Stack
from tests.helpers import auth

# Short timers so tests see reconciliation within seconds, not minutes.
FAST_TIMERS = {
    "TODO_SERIES_GRACE_SECONDS": "2",
    "TODO_SERIES_RECONCILE_SECONDS": "5",
    "TODO_SWEEP_INTERVAL_SECONDS": "2",
    # Every series' workflow looked at in each sweep (the tests' stacks hold a few hundred).
    "TODO_SWEEP_WORKFLOW_CHECKS": "1000",
    # SMTP retries within seconds: 0.2 s doubling up to 1 s between attempts.
    "TODO_SMTP_RETRY_INITIAL_SECONDS": "0.2",
    "TODO_SMTP_RETRY_MAX_SECONDS": "1",
}


@contextmanager
def running_stack(
    name: str,
    profile: str = "default",
    *,
    tracing: bool = False,
    api_replicas: int = 1,
    ha: bool = False,
    audit_replicas: int = 1,
    code: Checkout | None = None,
    **app_env: str,
) -> Iterator[Stack]:
    """A stack on free ports in a fresh directory of its own, removed after; its apps run `code`
    (an earlier commit's, devstack.checkout) or this checkout's."""
    stack = load.stack_in_new_dir(
        f"todo-{name}-",
        profile=profile,
        app_env={**FAST_TIMERS, **app_env},
        tracing=tracing,
        api_replicas=api_replicas,
        ha=ha,
        audit_replicas=audit_replicas,
        code=code or current(),
    )
    try:
        with stack:
            yield stack
    finally:
        shutil.rmtree(stack.run_dir, ignore_errors=True)


def create_recurring_task(
    client: httpx.Client, user: str, *, title: str, due_at: str, rule: str, timezone: str
) -> dict[str, Any]:
    """POST /v1/tasks with a recurrence: the first occurrence of a new series."""
    response = client.post(
        "/v1/tasks",
        json=load.recurring_body(title, due_at=due_at, rule=rule, timezone=timezone),
        headers=auth(user),
    )
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


def create_reminded_task(client: httpx.Client, user: str, title: str, at: datetime) -> dict[str, Any]:
    """POST /v1/tasks with one reminder `at`, the task due an hour later."""
    response = client.post("/v1/tasks", json=load.reminded_body(title, at), headers=auth(user))
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


def history(client: httpx.Client, user: str, task_id: str) -> list[dict[str, Any]]:
    """The task's history as the audit role (`client`) serves it to `user`;
    empty until it answers 200."""
    response = client.get(f"/v1/tasks/{task_id}/history", headers=auth(user))
    if response.status_code != 200:
        return []
    return response.json()["events"]  # type: ignore[no-any-return]


def wait_until(
    check: Callable[[], Any], timeout: float = 30, interval: float = 0.2, what: str = "condition"
) -> Any:
    """Poll until `check()` is truthy; return its value or fail saying what."""
    try:
        return load.wait_for(check, timeout, interval, what)
    except load.WaitTimeout as error:
        # Outside the handler, so the report shows the failure, not a chain.
        message = str(error)
    pytest.fail(message)


def read_topic(bootstrap: str, topic: str, keep: Any, want: int, timeout: float = 60) -> list[Any]:
    """Messages of `topic` on the broker at `bootstrap` (all partitions, from
    the start) whose value passes `keep`, until `want` of them or `timeout`."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"tests-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    found: list[Any] = []
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(kafka.PARTITIONS)])
        deadline = time.monotonic() + timeout
        while len(found) < want and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            if keep(message.value()):
                found.append(message)
    finally:
        consumer.close()
    return found


# ---- many series at once (replicas, HA) ------------------------------------------------------


def daily_series(client: httpx.Client, prefix: str, count: int, due: datetime) -> list[tuple[str, str]]:
    """`count` daily series, each of a user of its own: (user, series id)."""
    series = []
    for n in range(count):
        user = f"{prefix}-{uuid.uuid4().hex[:8]}"
        body = {
            "title": f"Series {n}",
            "due_at": due.isoformat(),
            "recurrence": {"rule": "daily", "timezone": str(due.tzinfo)},
        }
        created = client.post("/v1/tasks", json=body, headers=auth(user))
        assert created.status_code == 201, created.text
        series.append((user, created.json()["series_id"]))
    return series


def pending(client: httpx.Client, user: str, series_id: str) -> list[dict[str, Any]]:
    response = client.get("/v1/tasks", params={"series_id": series_id, "limit": 200}, headers=auth(user))
    assert response.status_code == 200, response.text
    return [t for t in response.json()["items"] if t["status"] == "pending"]


def step_all(client: httpx.Client, series: list[tuple[str, str]], index: int) -> list[dict[str, Any]]:
    """Complete each series' current occurrence (in parallel, through the balancer) and wait
    for the next: every series then has one pending occurrence, number `index`."""

    def complete(entry: tuple[str, str]) -> None:
        user, series_id = entry
        (current,) = pending(client, user, series_id)
        assert client.post(f"/v1/tasks/{current['id']}/complete", headers=auth(user)).status_code == 200

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(complete, series))

    def stepped() -> list[dict[str, Any]] | None:
        found = [pending(client, user, series_id) for user, series_id in series]
        done = all(len(p) == 1 and p[0]["occurrence_index"] == index for p in found)
        return [p[0] for p in found] if done else None

    return wait_until(stepped, timeout=180, what=f"occurrence #{index} of every series")  # type: ignore[no-any-return]


def placement_leader(stack: Stack) -> str:
    """The placement server whose metrics say it leads the Raft group."""

    def leading() -> str | None:
        for member in stack.control_plane:
            try:
                text = httpx.get(f"http://127.0.0.1:{member.placement_metrics}/metrics", timeout=5).text
            except httpx.HTTPError:
                continue
            for family in text_string_to_metric_families(text):
                if any(s.name == "dapr_placement_leader_status" and s.value == 1 for s in family.samples):
                    return f"placement{member.suffix}"
        return None

    return wait_until(leading, timeout=60, what="a placement leader")  # type: ignore[no-any-return]


def sweeper_repairs(stack: Stack) -> dict[str, float]:
    """`todo_sweeper_repairs_total` by action, summed over the api replicas running now (a
    replica restarted since counts from zero again)."""
    repairs: dict[str, float] = {}
    for role in stack.roles():
        if role.name != API.name:
            continue
        metrics = httpx.get(f"http://127.0.0.1:{stack.app_port_of(role)}/metrics", timeout=10).text
        for family in text_string_to_metric_families(metrics):
            for sample in family.samples:
                if sample.name == "todo_sweeper_repairs_total":
                    action = sample.labels["action"]
                    repairs[action] = repairs.get(action, 0.0) + sample.value
    return repairs
