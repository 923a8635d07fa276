"""Step latency: a recurring task completed -> its next occurrence committed.

Starts its own local stack (devstack, random ports), creates one daily series
per completion to come, waits until every workflow is waiting, then completes
them at a fixed rate (open loop: a slow step does not slow the offered load)
and reads both timestamps from PostgreSQL: `completed_at` of occurrence #1 and
`created_at` of occurrence #2, both written by the app's clock.

    python bench/step_bench.py --rate 20 --duration 60 --json bench/results/step.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devstack.ports import StackPorts
from devstack.stack import Stack, StackConfig
from tests.helpers import auth

GOAL_P95_SECONDS = 0.25


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def create_series(client: httpx.Client, count: int, user: str) -> list[dict[str, Any]]:
    due = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0).isoformat()
    body = {"title": "bench", "due_at": due, "recurrence": {"rule": "daily", "timezone": "UTC"}}
    headers = auth(user)

    def one(_: int) -> dict[str, Any]:
        response = client.post("/v1/tasks", json=body, headers=headers)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(count)))


def wait_for_workflows(database_url: str, series_ids: list[str], timeout: float) -> None:
    """Every workflow started (the service records it) and had a moment to
    reach its first wait."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM series WHERE id = ANY(%s) AND workflow_started_at IS NOT NULL",
                ([uuid.UUID(s) for s in series_ids],),
            ).fetchone()
            if row and row[0] == len(series_ids):
                time.sleep(2)
                return
            time.sleep(0.5)
    raise SystemExit("the series' workflows did not all start in time")


def complete_at_rate(client: httpx.Client, tasks: list[dict[str, Any]], rate: float, user: str) -> float:
    """Open-loop: request i is sent at start + i/rate whatever the others do."""
    headers = auth(user)
    started = time.monotonic()
    errors: list[str] = []
    lock = threading.Lock()

    def fire(index_task: tuple[int, dict[str, Any]]) -> None:
        index, task = index_task
        delay = started + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        response = client.post(f"/v1/tasks/{task['id']}/complete", headers=headers)
        if response.status_code != 200:
            with lock:
                errors.append(response.text)

    with ThreadPoolExecutor(max_workers=max(8, int(rate * 2))) as pool:
        list(pool.map(fire, enumerate(tasks)))
    if errors:
        raise SystemExit(f"{len(errors)} completions failed, first: {errors[0]}")
    return time.monotonic() - started


def step_latencies(database_url: str, series_ids: list[str], timeout: float) -> tuple[list[float], int]:
    ids = [uuid.UUID(s) for s in series_ids]
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url) as conn:
        while True:
            rows = conn.execute(
                """
                SELECT extract(epoch FROM nxt.created_at - cur.completed_at)
                FROM tasks cur JOIN tasks nxt
                  ON nxt.series_id = cur.series_id AND nxt.occurrence_index = 2
                WHERE cur.series_id = ANY(%s) AND cur.occurrence_index = 1
                """,
                (ids,),
            ).fetchall()
            if len(rows) == len(ids) or time.monotonic() > deadline:
                return [float(r[0]) for r in rows], len(ids) - len(rows)
            time.sleep(1)


def run(rate: float, duration: float, stack: Stack | None = None) -> dict[str, Any]:
    count = max(1, int(rate * duration))
    own = stack is None
    if stack is None:
        run_dir = Path(tempfile.mkdtemp(prefix="bench-step-"))
        stack = Stack(StackConfig(ports=StackPorts.random(), run_dir=run_dir, log_level="warn"))
        stack.__enter__()
    try:
        user = f"bench-{uuid.uuid4().hex[:6]}"
        with httpx.Client(base_url=stack.app_url, timeout=60) as client:
            print(f"creating {count} recurring series...", file=sys.stderr)
            tasks = create_series(client, count, user)
            series_ids = [t["series_id"] for t in tasks]
            wait_for_workflows(stack.database_url, series_ids, timeout=300)
            print(f"completing {count} tasks at {rate}/s...", file=sys.stderr)
            elapsed = complete_at_rate(client, tasks, rate, user)
        latencies, missing = step_latencies(stack.database_url, series_ids, timeout=120)
    finally:
        if own:
            stack.stop()
    p95 = percentile(latencies, 0.95)
    return {
        "name": "step",
        "conditions": {
            "rate_per_s": rate,
            "duration_s": duration,
            "completions": count,
            "offered_s": round(elapsed, 1),
        },
        "p50_s": percentile(latencies, 0.50),
        "p95_s": p95,
        "p99_s": percentile(latencies, 0.99),
        "max_s": max(latencies) if latencies else float("nan"),
        "mean_s": statistics.fmean(latencies) if latencies else float("nan"),
        "next_tasks": len(latencies),
        "missing": missing,
        "goal_p95_s": GOAL_P95_SECONDS,
        "goal_met": p95 <= GOAL_P95_SECONDS and missing == 0,
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def markdown(result: dict[str, Any]) -> str:
    c = result["conditions"]
    return "\n".join(
        [
            "| completions | rate | p50 | p95 | p99 | max | missing | goal p95 ≤ 250 ms |",
            "|---:|---:|---:|---:|---:|---:|---:|:---:|",
            f"| {c['completions']} | {c['rate_per_s']}/s | {ms(result['p50_s'])} | {ms(result['p95_s'])} | "
            f"{ms(result['p99_s'])} | {ms(result['max_s'])} | {result['missing']} | "
            f"{'yes' if result['goal_met'] else 'no'} |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=20.0, help="completions per second (default 20)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    args = parser.parse_args()
    result = run(args.rate, args.duration)
    print(markdown(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
