"""Outages under load: PostgreSQL restarts, the event broker goes away.

The database: the API answers 503 problem JSON while it is down (never a
500), recovers by itself, and no completion is lost. The broker: the
transactional outbox holds the events, and after recovery the audit log has
every one of them exactly once (compared with the outbox by event_id).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.load import query
from devstack.roles import AUDIT
from devstack.stack import Stack
from tests.chaos.support import (
    Completer,
    Scale,
    audited,
    create_series,
    new_user,
    one_step_each,
    outbox_ids,
    step_counts,
)
from tests.helpers import auth
from tests.integration.support import wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(1800)]


class Traffic:
    """Background requests from one user until stopped: creates, lists and
    edits, each answer counted by status. A transport error (the app itself
    never goes down here) or a status other than 2xx/503 is recorded."""

    def __init__(self, stack: Stack, user: str, workers: int = 4) -> None:
        self.stack = stack
        self.user = user
        self.workers = workers
        self.statuses: Counter[int] = Counter()
        self.unexpected: list[str] = []
        self.problem_503s = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Traffic:
        for i in range(self.workers):
            thread = threading.Thread(target=self._run, args=(i,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(120)

    def _record(self, response: httpx.Response) -> None:
        with self._lock:
            self.statuses[response.status_code] += 1
            if response.status_code == 503:
                if response.headers.get("content-type") == "application/problem+json":
                    self.problem_503s += 1
                else:
                    self.unexpected.append(f"503 without problem JSON: {response.text[:200]}")
            elif response.status_code >= 300:
                self.unexpected.append(
                    f"{response.request.method} {response.request.url.path}: "
                    f"{response.status_code} {response.text[:300]}"
                )

    def _run(self, worker: int) -> None:
        headers = auth(self.user)
        n = 0
        with httpx.Client(base_url=self.stack.app_url, timeout=60) as client:
            while not self._stop.is_set():
                n += 1
                try:
                    created = client.post(
                        "/v1/tasks", json={"title": f"traffic {worker}-{n}"}, headers=headers
                    )
                    self._record(created)
                    if created.status_code == 201:
                        self._record(
                            client.patch(
                                f"/v1/tasks/{created.json()['id']}",
                                json={"priority": "high"},
                                headers=headers,
                            )
                        )
                    self._record(client.get("/v1/tasks", params={"limit": 5}, headers=headers))
                except httpx.TransportError as error:
                    with self._lock:
                        self.unexpected.append(f"transport error: {error!r}")
                time.sleep(0.05)


# ---- PostgreSQL -------------------------------------------------------------


def test_postgres_restart_under_load_answers_503_never_500_and_loses_no_completion(
    chaos_stack: Stack, scale: Scale, ledger: Callable[[dict[str, object]], None]
) -> None:
    stack = chaos_stack
    if "postgres" not in stack.processes:
        pytest.skip("DATABASE_URL points at an external PostgreSQL the stack cannot stop")
    user = new_user("postgres")
    n = scale.completions
    tasks = create_series(stack, user, n)
    series_ids = [t["series_id"] for t in tasks]
    readiness: list[int] = []
    alive: list[int] = []  # /healthz: alive, just not ready

    # Completions paced to span the outage: a quarter before, the rest during and after.
    window = scale.outage_seconds * 2
    completer = Completer(stack.app_url, auth(user), tasks, rate=n / window, timeout=scale.recovery_timeout)
    with (
        Traffic(stack, new_user("postgres-traffic")) as traffic,
        httpx.Client(base_url=stack.app_url, timeout=30) as probe,
    ):
        completer.start()
        time.sleep(window / 4)
        stack.process("postgres").stop()
        try:
            down_until = time.monotonic() + scale.outage_seconds
            while time.monotonic() < down_until:
                ready = probe.get("/readyz")
                readiness.append(ready.status_code)
                if ready.status_code == 503:
                    assert "database" in ready.json()["detail"], ready.text
                alive.append(probe.get("/healthz").status_code)
                time.sleep(0.5)
        finally:
            stack.restart("postgres", timeout=120)
        wait_until(
            lambda: probe.get("/readyz").status_code == 200, timeout=120, what="/readyz after the outage"
        )
        completer.join()
        time.sleep(2)  # traffic against the recovered database

    acknowledged = completer.statuses["200"]
    steps = one_step_each(stack, series_ids, scale.recovery_timeout)
    counts: dict[str, object] = {
        "completions": n,
        "outage_s": scale.outage_seconds,
        "completion_answers": dict(completer.statuses),
        "traffic_answers": dict(traffic.statuses),
        "problem_503s": traffic.problem_503s + completer.statuses["503"],
        "readyz_during_outage": dict(Counter(readiness)),
        "completed_in_db": step_counts(stack, series_ids)["completed"],
        **steps,
    }
    ledger(counts)

    assert completer.unexpected == [], completer.unexpected[:5]
    assert traffic.unexpected == [], traffic.unexpected[:5]
    assert 500 not in traffic.statuses
    assert traffic.problem_503s > 0, "nothing saw the outage: the load did not overlap it"
    assert set(readiness) == {503}, readiness
    assert set(alive) == {200}, alive
    assert acknowledged == n and counts["completed_in_db"] == n, counts
    assert steps["next_tasks"] == n and steps["missing"] == 0 and steps["extra"] == 0, counts
    assert steps["inconsistent"] == 0, counts


# ---- the event broker -------------------------------------------------------


@pytest.fixture(params=[pytest.param("kafka"), pytest.param("default")])
def broker_stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """`kafka`: a real broker, stopped. `default`: pubsub.in-memory lives in
    the audit role's sidecar (the relay publishes there), so that sidecar is
    what goes down."""
    yield request.getfixturevalue("kafka_chaos_stack" if request.param == "kafka" else "chaos_stack")


def unpublished(stack: Stack) -> int:
    return int(query(stack.database_url, "SELECT count(*) FROM outbox WHERE published_at IS NULL")[0][0])


def test_broker_outage_under_load_loses_and_duplicates_no_event(
    broker_stack: Stack, scale: Scale, ledger: Callable[[dict[str, object]], None]
) -> None:
    stack = broker_stack
    user = new_user(f"broker-{stack.config.profile}")
    broker = "kafka" if stack.config.profile == "kafka" else f"daprd-{AUDIT.name}"
    backlog: list[int] = []
    in_memory = stack.config.profile == "default"
    with ExitStack() as load:
        if not in_memory:
            traffic = load.enter_context(Traffic(stack, user))
            time.sleep(2)  # events flowing when the broker goes
        stack.process(broker).stop()
        if in_memory:
            # pubsub.in-memory acknowledges a publish whose delivery then dies
            # with its sidecar (components/default/pubsub.yaml): no promise
            # for events in flight at the stop, so the load starts after it.
            traffic = load.enter_context(Traffic(stack, user))
        try:
            down_until = time.monotonic() + scale.outage_seconds
            while time.monotonic() < down_until:
                backlog.append(unpublished(stack))
                time.sleep(1)
        finally:
            stack.restart(broker, timeout=120)
        time.sleep(2)  # and after it

    expected = outbox_ids(stack, user)
    wait_until(
        lambda: set(audited(stack, user)) == expected,
        timeout=scale.recovery_timeout,
        interval=1,
        what=f"all {len(expected)} events in the audit log",
    )
    time.sleep(3)  # a redelivery would land now
    got = audited(stack, user)
    counts: dict[str, Any] = {
        "profile": stack.config.profile,
        "outage_s": scale.outage_seconds,
        "requests": sum(traffic.statuses.values()),
        "events": len(expected),
        "backlog_peak": max(backlog),
        "audited": len(got),
        "lost": len(expected - set(got)),
        "duplicated": sum(c - 1 for c in got.values()),
        "unknown": len(set(got) - expected),
    }
    ledger(counts)

    assert traffic.unexpected == [], traffic.unexpected[:5]
    assert backlog[-1] > backlog[0], f"the outbox should grow while the broker is down: {backlog}"
    assert counts["lost"] == 0 and counts["duplicated"] == 0 and counts["unknown"] == 0, counts
    unsent = "SELECT count(*) FROM outbox WHERE partition_key = %s AND published_at IS NULL"
    assert query(stack.database_url, unsent, user)[0][0] == 0


def audit_events(stack: Stack, replica: int) -> float:
    port = stack.app_port_of(replace(AUDIT, replica=replica))
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "todo_audit_events_total"
    )


def test_one_of_two_audit_replicas_killed_under_load_loses_and_duplicates_no_event(
    kafka_chaos_stack: Stack, scale: Scale, ledger: Callable[[dict[str, object]], None]
) -> None:
    stack = kafka_chaos_stack
    second = replace(AUDIT, replica=2)
    # Each user's events share a partition (the key is the user): sixteen users reach both replicas.
    users = [new_user(f"audit-replica-{n}") for n in range(16)]
    with ExitStack() as load:
        traffic = [load.enter_context(Traffic(stack, user, workers=1)) for user in users]
        wait_until(lambda: audit_events(stack, 2) > 0, timeout=60, what="the second audit replica consuming")
        for name in (f"app-{second.suffix}", f"daprd-{second.suffix}"):
            stack.process(name).kill()
        time.sleep(scale.outage_seconds)

    expected = set().union(*(outbox_ids(stack, user) for user in users))

    def everything() -> dict[str, int]:
        return {event: n for user in users for event, n in audited(stack, user).items()}

    wait_until(
        lambda: set(everything()) == expected,
        timeout=scale.recovery_timeout,
        interval=1,
        what=f"all {len(expected)} events audited by the replica left",
    )
    time.sleep(3)  # a redelivery would land now
    got = everything()
    counts: dict[str, Any] = {
        "requests": sum(sum(t.statuses.values()) for t in traffic),
        "events": len(expected),
        "audited": len(got),
        "lost": len(expected - set(got)),
        "duplicated": sum(c - 1 for c in got.values()),
        "unknown": len(set(got) - expected),
    }
    ledger(counts)
    stack.restart_role(second)

    assert [u for t in traffic for u in t.unexpected] == []
    assert counts["lost"] == 0 and counts["duplicated"] == 0 and counts["unknown"] == 0, counts
