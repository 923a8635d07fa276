"""scale: many active recurring series on one app and one sidecar.

Creates N daily series (default 100,000; `--series N`; `--scale-minutes M`
stops creating after M minutes and reports the count reached) as fast as 16
concurrent clients go, each with its workflow started and waiting, and
reports the creation rate, the resident memory of the stack's processes and
the database sizes afterwards; then completes a random 1,000 of them at
20/s and reports their step latency, as bench/step.py measures it.

The API sidecar runs with a memory budget (`--api-sidecar-memory`, default
SIDECAR_MEMORY_MIB) as the chart gives it one: GOMEMLIMIT at 90 % of it.
daprd keeps every waiting workflow in memory, and without a limit Go lets its
heap grow to twice what is live before it collects (figures before and after:
docs/performance.md).
"""

from __future__ import annotations

import random
import time
from typing import Any

import psycopg

from bench import step
from bench.harness import (
    Context,
    Figure,
    Goal,
    Outcome,
    latency_figures,
    measured,
    rss_bytes,
    stack_roots,
    wait_stack_idle,
)
from bench.load import Users, create_series, wait_workflows_started
from devstack.sidecars import go_memlimit
from devstack.stack import STATE_DATABASE

NAME = "scale"
PROFILE = "default"
DEFAULT_SERIES = 100_000
GOAL_RATE = 200.0
GOAL_RSS = 1024**3
# README "Sizing": 128 MiB + 6 KiB per series, for 100,000 series.
SIDECAR_MEMORY_MIB = 768
WORKERS = 16
STEP_RATE = 20.0


def database_sizes(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT datname, pg_database_size(datname) FROM pg_database WHERE datname = current_database() "
            "OR datname = %s",
            (STATE_DATABASE,),
        ).fetchall()
    return {name: int(size) for name, size in rows}


def run(ctx: Context) -> Outcome:
    stack = ctx.stacks.get(PROFILE)
    count = ctx.series or (50 if ctx.quick else DEFAULT_SERIES)
    users = Users("scale", ctx.users)
    rss_before = rss_bytes(stack_roots(stack))
    with measured(stack) as facts:
        started = time.monotonic()
        budget = ctx.scale_minutes * 60 if ctx.scale_minutes else None
        tasks = create_series(stack.app_url, count, users, f"creating {count:,} series", WORKERS, budget)
        elapsed = time.monotonic() - started
    count = len(tasks)  # fewer when the time budget ran out first
    chosen = random.sample(tasks, min(count, 10 if ctx.quick else 1000))
    chosen_series = [t["series_id"] for t in chosen]
    wait_workflows_started(stack.database_url, chosen_series, timeout=1800)
    backlog_s, outbox_backlog_s = wait_stack_idle(stack, timeout=3600)
    rss = rss_bytes(stack_roots(stack))
    sizes = database_sizes(stack.database_url)
    create_conditions = {
        "series": count,
        "clients": WORKERS,
        "users": len(users),
        "seconds": round(elapsed, 1),
        "load": "closed loop",
        "engine_backlog_after_s": round(backlog_s, 1),
        "outbox_backlog_after_s": round(outbox_backlog_s, 1),
        **({"budget_min": ctx.scale_minutes} if ctx.scale_minutes else {}),
    }
    sidecar_mib = stack.config.api_sidecar_memory_mib
    memory_conditions = {
        "series": count,
        "measured": "resident set, process and children, once the engine was idle",
        "api sidecar": f"GOMEMLIMIT {go_memlimit(sidecar_mib)} (budget {sidecar_mib} MiB)"
        if sidecar_mib
        else "no GOMEMLIMIT",
    }
    app_and_sidecar = rss["app-api"] + rss["daprd-api"]

    result = step.measure_series_steps("scale step", stack, chosen, chosen_series, [], STEP_RATE, users)
    step_conditions = {**result.conditions, "active_series": count}
    figures = [
        Figure("series created per s", count / elapsed, "/s", create_conditions, Goal(">=", GOAL_RATE)),
        Figure(
            "series running per s",
            count / (elapsed + backlog_s),
            "/s",
            create_conditions,
            Goal(">=", GOAL_RATE),
            note="until the engine had run every new workflow's first generation",
        ),
        Figure("RSS app + daprd", app_and_sidecar, "bytes", memory_conditions, Goal("<=", GOAL_RSS)),
        Figure("RSS app", rss["app-api"], "bytes", memory_conditions),
        Figure("RSS daprd", rss["daprd-api"], "bytes", memory_conditions),
        Figure("RSS scheduler", rss["scheduler"], "bytes", memory_conditions),
        Figure("RSS PostgreSQL (all backends)", rss.get("postgres", 0), "bytes", memory_conditions),
        *(
            Figure(f"DB size {name}", size, "bytes", memory_conditions)
            for name, size in sorted(sizes.items())
        ),
        *latency_figures("scale step", result.latencies, step_conditions, step.GOAL_P95_S),
        Figure("scale step: steps missing", result.missing, "count", step_conditions, Goal("==", 0)),
    ]
    details: dict[str, Any] = {
        "rss_before": rss_before,
        "rss_after": rss,
        "cpu_creating": facts,
        # In send order: a queue building up shows as latencies that grow.
        "cpu_during_scale_step": result.facts,
        "scale_step_latencies_s_in_send_order": result.latencies,
    }
    return Outcome(figures, details)
