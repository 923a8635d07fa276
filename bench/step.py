"""step: a recurring task completed -> its next occurrence committed.

Creates one daily series per completion to come and waits until their
workflows started. Then (1) completes tasks at a fixed rate, open loop, and
takes each step's latency as the next task's `created_at` in PostgreSQL (the
activity's commit) minus the time its completion request was due to go:
no polling in the measurement; (2) completes another batch as fast as 32
clients go and counts steps committed per second: the throughput the engine
floor is compared with (bench/floor.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from bench.harness import Context, Figure, Goal, Outcome, latency_figures, measured, wait_stack_idle
from bench.load import (
    Users,
    closed_loop,
    completion_sender,
    create_series,
    next_task_times,
    open_loop,
    wait_workflows_started,
)
from devstack.stack import Stack

NAME = "step"
PROFILE = "default"
GOAL_P95_S = 0.25
BURST_WORKERS = 32


@dataclass
class StepRun:
    """Latencies at the fixed rate and the throughput of the burst."""

    latencies: list[float]
    missing: int
    errors: int
    burst_steps_per_s: float
    burst_missing: int
    conditions: dict[str, Any]
    burst_conditions: dict[str, Any]
    facts: dict[str, Any]


def sizes(ctx: Context) -> tuple[float, float, int]:
    """(rate per s, seconds, burst size) for the step and the floor alike."""
    return (5.0, 4.0, 20) if ctx.quick else (20.0, 60.0, 1200)


def measure_steps(
    label: str,
    fixed: Sequence[str],
    burst: Sequence[str],
    rate: float,
    send: Callable[[str], tuple[bool, str]],
    committed: Callable[[Sequence[str]], dict[str, float]],
    stack_facts: Callable[[], Any],
    users: int | None = None,
) -> StepRun:
    """The fixed-rate and burst phases over keys (series or workflow instances)
    whose step `send` triggers and `committed` times; shared with the floor so
    both sides are measured the same way. `users`: how many owners the keys
    have, for the conditions (the floor's instances have none)."""
    owners = {"users": users} if users else {}
    with stack_facts() as facts:
        shots = open_loop(f"{label} at a fixed rate", len(fixed), rate, lambda i: send(fixed[i]))
    done = committed([fixed[s.index] for s in shots if s.ok])
    latencies = [done[fixed[s.index]] - s.due for s in shots if s.ok and fixed[s.index] in done]
    errors = sum(not s.ok for s in shots)

    first = time.time()

    def one(index: int) -> None:
        ok, detail = send(burst[index])
        if not ok:
            raise SystemExit(f"{label}: a burst step failed: {detail}")

    closed_loop(f"{label} as fast as {BURST_WORKERS} clients go", len(burst), BURST_WORKERS, one)
    burst_done = committed(burst)
    span = (max(burst_done.values()) - first) if burst_done else float("nan")
    return StepRun(
        latencies=latencies,
        missing=len(fixed) - errors - len(latencies),
        errors=errors,
        burst_steps_per_s=len(burst_done) / span if burst_done else 0.0,
        burst_missing=len(burst) - len(burst_done),
        conditions={
            "rate_per_s": rate,
            "duration_s": round(len(fixed) / rate, 1),
            "steps": len(fixed),
            "load": "open loop",
            **owners,
        },
        burst_conditions={"steps": len(burst), "clients": BURST_WORKERS, "span_s": round(span, 2), **owners},
        facts=facts,
    )


def measure_series_steps(
    label: str,
    stack: Stack,
    tasks: Sequence[dict[str, Any]],
    fixed: Sequence[str],
    burst: Sequence[str],
    rate: float,
    users: Users,
) -> StepRun:
    """measure_steps over our series (keys: series ids among `tasks`): a step
    is its current task completed by its owner, timed by the commit of
    occurrence #2. The step benchmark's and the scale benchmark's."""
    with httpx.Client(base_url=stack.app_url, timeout=120) as client:
        return measure_steps(
            label,
            fixed,
            burst,
            rate,
            completion_sender(client, tasks, users),
            lambda keys: next_task_times(stack.database_url, keys, timeout=300),
            lambda: measured(stack),
            users=len(users),
        )


def figures(label: str, run: StepRun, goal_p95: float | None) -> list[Figure]:
    return [
        *latency_figures(label, run.latencies, run.conditions, goal_p95),
        Figure(f"{label}: steps missing", run.missing, "count", run.conditions, Goal("==", 0)),
        Figure(f"{label}: failed requests", run.errors, "count", run.conditions, Goal("==", 0)),
        Figure(f"{label} max throughput", run.burst_steps_per_s, "/s", run.burst_conditions),
    ]


def run(ctx: Context) -> Outcome:
    stack = ctx.stacks.get(PROFILE)
    rate, seconds, burst = sizes(ctx)
    count = int(rate * seconds)
    users = Users("step", ctx.users)
    tasks = create_series(stack.app_url, count + burst, users, "creating series")
    series = [t["series_id"] for t in tasks]
    wait_workflows_started(stack.database_url, series, timeout=600)
    wait_stack_idle(stack, timeout=600)
    result = measure_series_steps("step", stack, tasks, series[:count], series[count:], rate, users)
    return Outcome(
        figures(NAME, result, GOAL_P95_S),
        {"cpu_during_fixed_rate": result.facts, "latencies_s_in_send_order": result.latencies},
    )
