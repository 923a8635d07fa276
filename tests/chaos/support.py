"""Load, faults and invariants of the fault-injection suite.

Every invariant is read from PostgreSQL (the source of truth), never from
the API under test: a count that the API computed could hide what it lost.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench import load
from devstack.smtp_sink import read_mail
from devstack.stack import Stack
from tests.helpers import auth
from tests.integration.support import sweeper_repairs, wait_until


@dataclass(frozen=True)
class Scale:
    name: str
    # Recurring series whose occurrence #1 is completed around the fault.
    completions: int
    # How long an outage (database, broker) lasts.
    outage_seconds: float
    # One-off tasks whose reminder falls due around a fault.
    reminders: int
    # Upper bound of any wait for recovery: the machine is shared and loaded.
    recovery_timeout: float


SCALES = {
    "short": Scale("short", completions=100, outage_seconds=10, reminders=10, recovery_timeout=300),
    "long": Scale("long", completions=1000, outage_seconds=30, reminders=100, recovery_timeout=900),
}

# A completion is retried on these, as a client would: the app restarting
# (connection refused or reset) or telling it to come back (503).
RETRYABLE = {503}
# What HAProxy answers for a request whose replica died under it (no or a cut-off response), as
# an ingress does for a crashed pod: the same as a reset connection to a client without a
# balancer. Completing is idempotent, so the client retries it. The app itself never answers these.
GATEWAY = {502, 504}


def _from_the_app(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").startswith("application/problem+json")


def new_user(scenario: str) -> str:
    return f"chaos-{scenario}-{uuid.uuid4().hex[:6]}"


def create_series(stack: Stack, user: str, count: int) -> list[dict[str, Any]]:
    """`count` daily series due tomorrow (so no timer wakes them during the
    test), all from `user`, each with its workflow started."""
    body = load.recurring_body("chaos")
    headers = auth(user)
    tasks = load.create_tasks(
        stack.app_url,
        count,
        lambda _: body,
        lambda _: headers,
        f"creating {count} series",
        workers=8,
        timeout=60,
    )
    load.wait_workflows_started(stack.database_url, [t["series_id"] for t in tasks], timeout=300)
    return tasks


@dataclass
class Completer:
    """Completes tasks from a pool of threads, each retried until it answers
    200 as a client would retry: on connection errors and 503. Every answer
    is counted; any other status is a failure the test reports."""

    # Where and as whom: the stack's URL (or a cluster's) and the user's bearer header.
    base_url: str
    headers: dict[str, str]
    tasks: list[dict[str, Any]]
    # Completions per second (open loop), or None for as fast as the pool goes.
    rate: float | None = None
    workers: int = 16
    timeout: float = 600
    statuses: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Completer:
        self._thread = threading.Thread(target=self._run, name="completer", daemon=True)
        self._thread.start()
        return self

    def join(self) -> None:
        assert self._thread is not None
        self._thread.join(self.timeout + 60)
        assert not self._thread.is_alive(), "the completions did not finish"

    def _count(self, status: str, text: str = "") -> None:
        with self._lock:
            self.statuses[status] += 1
            if text:
                self.unexpected.append(text)

    def _complete(self, client: httpx.Client, task_id: str) -> tuple[bool, str]:
        """One task, retried as a client would; (completed, what went wrong)."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            try:
                response = client.post(f"/v1/tasks/{task_id}/complete", headers=self.headers)
            except httpx.TransportError as error:
                self._count(type(error).__name__)
                time.sleep(0.5)
                continue
            if response.status_code == 200:
                self._count("200")
                return True, ""
            if response.status_code in GATEWAY and not _from_the_app(response):
                self._count(f"{response.status_code} (balancer)")
                time.sleep(0.5)
                continue
            if response.status_code in RETRYABLE:
                self._count(str(response.status_code))
                assert response.headers["content-type"] == "application/problem+json", response.text
                time.sleep(0.5)
                continue
            failure = f"{response.status_code} {response.text[:300]}"
            self._count(str(response.status_code), failure)
            return False, failure
        failure = f"task {task_id} not completed within {self.timeout:.0f}s"
        self._count("gave up", failure)
        return False, failure

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:

            def send(index: int) -> tuple[bool, str]:
                return self._complete(client, self.tasks[index]["id"])

            # Each failure is already counted and kept in `unexpected`, where
            # the test looks: the loops' own record of it is not needed.
            if self.rate:
                load.open_loop("completing", len(self.tasks), self.rate, send, self.workers)
            else:
                load.closed_loop("completing", len(self.tasks), self.workers, send)


def step_counts(stack: Stack, series_ids: list[str]) -> dict[str, int]:
    """Occurrence #1 completed, #2 created, and anything beyond #2."""
    ids = [uuid.UUID(s) for s in series_ids]
    completed, second, beyond = load.query(
        stack.database_url,
        """
        SELECT count(*) FILTER (WHERE occurrence_index = 1 AND status = 'completed'),
               count(*) FILTER (WHERE occurrence_index = 2),
               count(*) FILTER (WHERE occurrence_index > 2)
        FROM tasks WHERE series_id = ANY(%s)
        """,
        ids,
    )[0]
    return {"completed": completed, "next_tasks": second, "beyond": beyond}


def one_step_each(stack: Stack, series_ids: list[str], timeout: float) -> dict[str, Any]:
    """Wait until every series made its step, then check each one: tasks #1
    (completed) and #2 (pending) only, the series' own index and current task
    pointing at #2, and exactly one task.created event per task in the
    outbox. Returns the counts (next_tasks, missing, extra, inconsistent)."""
    n = len(series_ids)
    wait_until(
        lambda: step_counts(stack, series_ids)["next_tasks"] >= n,
        timeout=timeout,
        interval=1,
        what=f"{n} next tasks",
    )
    # Room for a late duplicate step (a retried activity, a replay) to show.
    time.sleep(5)
    ids = [uuid.UUID(s) for s in series_ids]
    rows = load.query(
        stack.database_url,
        """
        SELECT s.id, s.occurrence_index, s.current_task_id,
               array_agg(t.occurrence_index ORDER BY t.occurrence_index),
               array_agg(t.status::text ORDER BY t.occurrence_index),
               array_agg(t.id ORDER BY t.occurrence_index),
               (SELECT count(*) FROM outbox o
                 WHERE o.body ->> 'series_id' = s.id::text AND o.body ->> 'event_type' = 'task.created')
        FROM series s JOIN tasks t ON t.series_id = s.id
        WHERE s.id = ANY(%s)
        GROUP BY s.id
        """,
        ids,
    )
    inconsistent = [
        row
        for row in rows
        if not (
            row[3] == [1, 2]
            and row[4] == ["completed", "pending"]
            and row[1] == 2
            and row[2] == row[5][1]
            and row[6] == 2
        )
    ]
    counts = step_counts(stack, series_ids)
    result: dict[str, Any] = {
        "series": len(rows),
        "next_tasks": counts["next_tasks"],
        "missing": n - counts["next_tasks"],
        "extra": counts["beyond"],
        "inconsistent": len(inconsistent),
    }
    if inconsistent:
        result["first_inconsistent"] = str(inconsistent[0])
    return result


def workflows_at_occurrence(stack: Stack, series_ids: list[str], index: int, timeout: float) -> int:
    """Wait until every series' workflow runs a generation whose state says
    occurrence `index` (custom status), as the database does; return how
    many do."""
    pending = set(series_ids)

    def check() -> bool:
        with httpx.Client(base_url=stack.dapr_http_url, timeout=30) as dapr:
            for sid in list(pending):
                response = dapr.get(f"/v1.0/workflows/dapr/series-{sid}")
                if response.status_code != 200:
                    continue
                body = response.json()
                status = body.get("properties", {}).get("dapr.workflow.custom_status", "")
                if body.get("runtimeStatus") == "RUNNING" and f'"occurrence_index": {index}' in status:
                    pending.discard(sid)
        return not pending

    wait_until(check, timeout=timeout, interval=2, what=f"every workflow at occurrence #{index}")
    return len(series_ids) - len(pending)


@dataclass(frozen=True)
class PlannedReminder:
    title: str
    at: datetime


def plan_reminders(
    stack: Stack, user: str, count: int, first_in: float, spread: float
) -> list[PlannedReminder]:
    """`count` one-off tasks whose reminders fall due from `first_in` seconds
    from now over `spread` seconds: around the fault that follows."""
    now = datetime.now(UTC)
    planned = [
        PlannedReminder(
            f"{user} reminder {i:03d}", now + timedelta(seconds=first_in + spread * i / max(1, count - 1))
        )
        for i in range(count)
    ]
    load.create_tasks(
        stack.app_url,
        count,
        lambda i: load.reminded_body(planned[i].title, planned[i].at),
        lambda _: auth(user),
        f"planning {count} reminders",
        workers=1,  # one after the other, in the order they fall due
        timeout=60,
    )
    return planned


def reminder_mail(stack: Stack, user: str, planned: list[PlannedReminder]) -> dict[str, list[dict[str, Any]]]:
    """The emails the SMTP sink received for each planned reminder, by title."""
    mail = [m for m in read_mail(stack.smtp_dir) if f"{user}@example.com" in m["rcpt_tos"]]
    found = {r.title: [m for m in mail if r.title in m["subject"]] for r in planned}
    return {title: messages for title, messages in found.items() if messages}


def every_reminder_once(
    stack: Stack, user: str, planned: list[PlannedReminder], timeout: float
) -> dict[str, int]:
    """Wait for one email per reminder, give duplicates a moment to show,
    and count: delivered, duplicated, early (before the reminder's time)."""
    wait_until(
        lambda: len(reminder_mail(stack, user, planned)) == len(planned),
        timeout=timeout,
        interval=1,
        what=f"{len(planned)} reminder emails",
    )
    time.sleep(5)
    mail = reminder_mail(stack, user, planned)
    early = sum(
        1
        for reminder in planned
        for message in mail.get(reminder.title, [])
        if datetime.fromtimestamp(message["received_ts"], UTC) < reminder.at
    )
    return {
        "reminders": len(planned),
        "delivered": len(mail),
        "duplicated": sum(len(messages) - 1 for messages in mail.values()),
        "early": early,
    }


# ---- one fault while completions are in flight ------------------------------------------------


def outbox_ids(stack: Stack, user: str) -> set[str]:
    rows = load.query(stack.database_url, "SELECT event_id FROM outbox WHERE partition_key = %s", user)
    return {str(event_id) for (event_id,) in rows}


def audited(stack: Stack, user: str) -> dict[str, int]:
    rows = load.query(
        stack.database_url,
        "SELECT event_id, count(*) FROM audit_log WHERE user_id = %s GROUP BY event_id",
        user,
    )
    return {str(event_id): count for event_id, count in rows}


def every_event_audited_once(stack: Stack, user: str, timeout: float) -> dict[str, int]:
    """Wait until the audit log holds every event the outbox wrote for `user`; count them."""
    expected = outbox_ids(stack, user)
    wait_until(
        lambda: expected <= set(audited(stack, user)),
        timeout=timeout,
        interval=1,
        what=f"all {len(expected)} events in the audit log",
    )
    got = audited(stack, user)
    return {
        "events": len(expected),
        "audited": len(got),
        "events_lost": len(expected - set(got)),
        "events_duplicated": sum(n - 1 for n in got.values()),
        "events_unknown": len(set(got) - expected),
    }


def step_timeline(stack: Stack, series_ids: list[str], fault_at: datetime) -> dict[str, float]:
    """How the steps flowed around the fault: the longest pause between two next occurrences
    created (the outage as the users saw it) and when the last came, after the fault began."""
    rows = load.query(
        stack.database_url,
        "SELECT created_at FROM tasks WHERE series_id = ANY(%s) AND occurrence_index = 2 ORDER BY created_at",
        [uuid.UUID(s) for s in series_ids],
    )
    times = [created for (created,) in rows]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    return {
        "longest_step_gap_s": round(max(gaps, default=0.0), 1),
        "last_step_after_fault_s": round((times[-1] - fault_at).total_seconds(), 1) if times else -1.0,
    }


def fault_mid_flight(
    stack: Stack,
    scale: Scale,
    ledger: Callable[[dict[str, object]], None],
    name: str,
    fault: Callable[[list[str]], object],
    *,
    with_reminders: bool,
    audit: bool = False,
) -> dict[str, object]:
    """`scale.completions` series completed from 16 clients while `fault(their ids)` runs (once a
    fifth are committed), reminders due around it: then every series has exactly one next occurrence, its
    workflow agrees, every reminder is emailed once and never early, and (`audit`) every event is
    in the audit log once. The counts, with what `fault` returned, go to the ledger."""
    user = new_user(name)
    n = scale.completions
    tasks = create_series(stack, user, n)
    series_ids = [t["series_id"] for t in tasks]
    planned = plan_reminders(stack, user, scale.reminders, first_in=5, spread=10) if with_reminders else []

    completer = Completer(stack.app_url, auth(user), tasks, timeout=scale.recovery_timeout).start()
    # The fault lands once a fifth of the completions are committed: the
    # rest are still to come, and most of the steps are still to run.
    wait_until(
        lambda: step_counts(stack, series_ids)["completed"] >= max(1, n // 5),
        timeout=scale.recovery_timeout,
        interval=0.1,
        what="a fifth of the completions",
    )
    at_fault = step_counts(stack, series_ids)
    wedges_before = stack.wedged_sidecar_restarts
    repairs_before = sweeper_repairs(stack)
    fault_at = datetime.now(UTC)
    described = fault(series_ids)
    fault_s = (datetime.now(UTC) - fault_at).total_seconds()
    completer.join()

    assert completer.unexpected == [], completer.unexpected[:5]
    assert at_fault["next_tasks"] < n, f"the fault came after every step: {at_fault}"
    steps = one_step_each(stack, series_ids, scale.recovery_timeout)
    in_step = workflows_at_occurrence(stack, series_ids, 2, scale.recovery_timeout)
    counts: dict[str, object] = {
        "completions": n,
        "completed_at_fault": at_fault["completed"],
        "next_at_fault": at_fault["next_tasks"],
        **steps,
        "workflows_at_2": in_step,
        "answers": dict(completer.statuses),
        "fault_s": round(fault_s, 1),
        **step_timeline(stack, series_ids, fault_at),
        # daprd 1.18.3 wedged by the crash (dapr/dapr#10408), its sidecar restarted.
        "sidecar_restarts_for_wedge": stack.wedged_sidecar_restarts - wedges_before,
        # What the sweeper repaired meanwhile (workflows restarted, replaced, nudged).
        **{
            f"sweeper_{action}": round(count - repairs_before.get(action, 0))
            for action, count in sweeper_repairs(stack).items()
            if count > repairs_before.get(action, 0)
        },
        **(described if isinstance(described, dict) else {}),
    }
    if planned:
        counts.update(every_reminder_once(stack, user, planned, scale.recovery_timeout))
    if audit:
        counts.update(every_event_audited_once(stack, user, scale.recovery_timeout))
    ledger(counts)

    assert steps["next_tasks"] == n and steps["missing"] == 0 and steps["extra"] == 0, counts
    assert steps["inconsistent"] == 0, counts
    assert in_step == n
    if planned:
        assert counts["delivered"] == len(planned), counts
        assert counts["duplicated"] == 0 and counts["early"] == 0, counts
    if audit:
        assert counts["events_lost"] == 0 and counts["events_duplicated"] == 0, counts
        assert counts["events_unknown"] == 0, counts
    return counts
