"""reminders: how late are reminders when many fall due together?

Creates N tasks (default 1,000) whose single reminder is spread evenly over a
W-second window (default 10 s) starting `lead` seconds later, and waits until
the stack's SMTP sink has received every email. Lateness is end to end: the
time the sink accepted the message minus the reminder's time; a negative one
is an early email.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.harness import Context, Figure, Goal, Outcome, latency_figures, measured
from bench.load import Users, create_tasks, reminded_body
from devstack.smtp_sink import read_mail
from devstack.stack import Stack

NAME = "reminders"
PROFILE = "default"
GOAL_P99_S = 1.0


def create_reminded(
    stack: Stack, users: Users, count: int, window: float, lead: float
) -> tuple[dict[str, datetime], float]:
    """({task id: reminder time}, seconds creating took)."""
    start = datetime.now(UTC) + timedelta(seconds=lead)
    times = [start + timedelta(seconds=window * i / count) for i in range(count)]
    started = time.monotonic()
    tasks = create_tasks(
        stack.app_url,
        count,
        lambda i: reminded_body(f"bench {i}", times[i]),
        users.headers_at,
        f"creating {count} tasks with a reminder",
        timeout=60,
    )
    # Without a budget every request made its task (or raised Refused): task i is request i's.
    return {task["id"]: at for task, at in zip(tasks, times, strict=True)}, time.monotonic() - started


def wait_for_mail(stack: Stack, due: dict[str, datetime], deadline: float) -> dict[str, float]:
    """{task id: lateness in seconds} for every email the sink received by `deadline`."""
    lateness: dict[str, float] = {}
    while time.monotonic() < deadline:
        for message in read_mail(stack.smtp_dir):
            # Message-ID: <reminder.{task_id}.{n}.{generation}@domain>
            task_id = message["message_id"].strip("<>").split(".")[1]
            if task_id in due and task_id not in lateness:
                lateness[task_id] = message["received_ts"] - due[task_id].timestamp()
        if len(lateness) == len(due):
            break
        time.sleep(0.5)
    return lateness


def run(ctx: Context) -> Outcome:
    stack = ctx.stacks.get(PROFILE)
    count, window, lead, grace = (20, 2.0, 15.0, 60.0) if ctx.quick else (1000, 10.0, 60.0, 120.0)
    users = Users("reminders", ctx.users)
    due, create_s = create_reminded(stack, users, count, window, lead)
    window_start = min(due.values())
    time.sleep(max(0.0, (window_start - datetime.now(UTC)).total_seconds()))
    with measured(stack) as facts:
        lateness = wait_for_mail(stack, due, time.monotonic() + window + grace)
    values = list(lateness.values())
    conditions = {"reminders": count, "window_s": window, "lead_s": lead, "users": len(users)}
    figures = latency_figures("reminder lateness", values, conditions, None)
    figures[2].goal = Goal("<=", GOAL_P99_S)  # p99 is the goal here
    figures += [
        Figure("reminders early", sum(v < 0 for v in values), "count", conditions, Goal("==", 0)),
        Figure("reminders not delivered", count - len(values), "count", conditions, Goal("==", 0)),
    ]
    details: dict[str, Any] = {
        "create_s": create_s,
        "cpu_during_window": facts,
        "samples": sorted(
            ((at - window_start).total_seconds(), lateness[t]) for t, at in due.items() if t in lateness
        ),
    }
    return Outcome(figures, details)
