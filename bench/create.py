"""create: `POST /v1/tasks` latency, plain and recurring, at a fixed open-loop rate.

A recurring create also commits the series and starts its workflow before it
answers, hence its own, looser goal.
"""

from __future__ import annotations

from typing import Any

import httpx

from bench.harness import Context, Figure, Goal, Outcome, latency_figures, measured
from bench.load import Users, due_tomorrow, http_send, open_loop, recurring_body

NAME = "create"
PROFILE = "default"
GOALS_P95_S = {"plain": 0.05, "recurring": 0.1}


def run(ctx: Context) -> Outcome:
    stack = ctx.stacks.get(PROFILE)
    rate, seconds = (5.0, 3.0) if ctx.quick else (20.0, 30.0)
    count = int(rate * seconds)
    users = Users("create", ctx.users)
    bodies: dict[str, dict[str, Any]] = {
        "plain": {"title": "bench plain", "due_at": due_tomorrow()},
        "recurring": recurring_body("bench recurring"),
    }
    figures: list[Figure] = []
    details: dict[str, Any] = {}
    with httpx.Client(base_url=stack.app_url, timeout=60) as client:
        for kind, body in bodies.items():
            send = http_send(
                client,
                "POST",
                lambda _: "/v1/tasks",
                201,
                headers=users.headers_at,
                json=body,
            )
            with measured(stack) as facts:
                shots = open_loop(f"create {kind}", count, rate, send)
            conditions = {
                "rate_per_s": rate,
                "duration_s": seconds,
                "requests": count,
                "load": "open loop",
                "users": len(users),
            }
            latencies = [s.seconds for s in shots if s.ok]
            errors = [s.detail for s in shots if not s.ok]
            figures += latency_figures(f"create {kind}", latencies, conditions, GOALS_P95_S[kind])
            figures.append(
                Figure(f"create {kind}: failed requests", len(errors), "count", conditions, Goal("==", 0))
            )
            details[kind] = {"cpu": facts, "first_errors": errors[:3]}
    return Outcome(figures, details)
