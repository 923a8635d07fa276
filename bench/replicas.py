"""replicas: steps with 1, 2 and 3 api replicas (HAProxy in front), and a dead replica's workflows moved.

One stack per replica count, one after the other on this machine (the same run, so the figures
sit side by side): step p95 at 20 completions/s and the burst throughput, measured as the step
benchmark measures them (bench/step.py); 1 is the single process, without a balancer. On the
three-replica stack, replica 3 and its sidecar are then killed (-9) and one completion per series
is sent at once: placement moves the dead replica's workflows to the two left, and the figure is
when the last of those steps committed after the kill, beside the same burst with all three up.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from typing import Any

import httpx

from bench import step
from bench.harness import Context, Figure, Outcome, wait_stack_idle
from bench.load import (
    Users,
    closed_loop,
    completion_sender,
    create_series,
    next_task_times,
    stack_in_new_dir,
    wait_workflows_started,
)
from devstack import progress
from devstack.stack import Stack

NAME = "replicas"
PROFILE = "default"
COUNTS = (1, 2, 3)
# Few enough that two cores take about a second for the burst: a bigger one hides the move inside
# the time the steps themselves take (600: 9.5 s all up, 8.8 s with one killed).
MOVE_SERIES = 60


def _stack(replicas: int) -> Stack:
    return stack_in_new_dir(f"bench-replicas-{replicas}-", log_level="warn", api_replicas=replicas)


def _series(stack: Stack, count: int, users: Users) -> list[dict[str, Any]]:
    tasks = create_series(stack.app_url, count, users, f"creating {count} series")
    wait_workflows_started(stack.database_url, [t["series_id"] for t in tasks], timeout=600)
    wait_stack_idle(stack, timeout=600)
    return tasks


def last_step_after(stack: Stack, tasks: list[dict[str, Any]], users: Users, label: str) -> float:
    """One completion per series at once (16 clients) from now: seconds until the last step."""
    sent = time.time()
    with httpx.Client(base_url=stack.app_url, timeout=120) as client:
        send = completion_sender(client, tasks, users)

        def one(index: int) -> None:
            ok, detail = send(tasks[index]["series_id"])
            if not ok:
                raise SystemExit(f"{label}: a completion failed: {detail}")

        closed_loop(label, len(tasks), 16, one)
    done = next_task_times(stack.database_url, [t["series_id"] for t in tasks], timeout=600)
    return max(done.values()) - sent


def _moved(stack: Stack, users: Users, quick: bool) -> tuple[float, float]:
    """(all up, replica 3 killed just before): seconds until the last of a burst's steps."""
    count = 20 if quick else MOVE_SERIES
    calm = last_step_after(stack, _series(stack, count, users), users, "a burst, all replicas up")
    tasks = _series(stack, count, users)
    for name in ("app-api-3", "daprd-api-3"):
        stack.process(name).kill()
    return calm, last_step_after(stack, tasks, users, "the same burst, replica 3 just killed")


def run(ctx: Context) -> Outcome:
    ctx.stacks.close()  # this benchmark's stacks have replicas: none of the shared one runs beside them
    rate, seconds, burst = step.sizes(ctx)
    count = int(rate * seconds)
    figures: list[Figure] = []
    details: dict[str, Any] = {}
    for replicas in COUNTS:
        stack = _stack(replicas)
        users = Users(f"replicas-{replicas}", ctx.users)
        with progress.step(f"{replicas} api replica(s) in {stack.run_dir}"):
            try:
                stack.start()
                tasks = _series(stack, count + burst, users)
                series = [t["series_id"] for t in tasks]
                label = f"step, {replicas} replica{'s' if replicas > 1 else ''}"
                result = step.measure_series_steps(
                    label, stack, tasks, series[:count], series[count:], rate, users
                )
                conditions = {"api_replicas": replicas, "balancer": "HAProxy" if replicas > 1 else "none"}
                for figure in step.figures(label, result, step.GOAL_P95_S):
                    figures.append(replace(figure, conditions={**figure.conditions, **conditions}))
                details[f"cpu_{replicas}"] = result.facts
                if replicas == COUNTS[-1]:
                    calm, moved = _moved(stack, users, ctx.quick)
                    moving = {"api_replicas": replicas, "series": 20 if ctx.quick else MOVE_SERIES}
                    figures += [
                        Figure("burst's last step, all replicas up", calm, "s", moving),
                        Figure(
                            "burst's last step, one replica killed (-9) just before",
                            moved,
                            "s",
                            moving,
                            note="placement moves the dead replica's workflows to the others",
                        ),
                    ]
            finally:
                stack.stop()
                shutil.rmtree(stack.run_dir, ignore_errors=True)
    return Outcome(figures, details)
