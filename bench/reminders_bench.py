"""Benchmark: how late are reminders when many fall due together?

Starts its own local stack (devstack: PostgreSQL, Dapr placement, scheduler
and daprd, the app, the SMTP sink) on random ports in a temporary directory,
creates N tasks (default 1,000) whose single reminder is spread evenly over one
W-second window (default 10 s) starting `--lead` seconds later, and waits until
the SMTP sink has received every email. Lateness is measured end to end: the
time the sink accepted the message minus the reminder's time. A negative
lateness is an early email.

    python bench/reminders_bench.py
    python bench/reminders_bench.py --count 2000 --window 10 --json /tmp/reminders.json

Goals (issue 4): never early, p99 <= 1 s, every reminder delivered.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from api.auth import issue_token
from devstack.ports import StackPorts
from devstack.smtp_sink import read_mail
from devstack.stack import Stack, StackConfig
from todos.settings import DEV_JWT_SECRET, Settings


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@contextmanager
def own_stack(run_dir: Path | None) -> Iterator[Stack]:
    """A stack in `run_dir`, or in a temporary directory removed afterwards
    (a run leaves ~130 MB of database and scheduler data)."""
    with tempfile.TemporaryDirectory(prefix="reminders-bench-") as scratch:
        stack = Stack(
            StackConfig(ports=StackPorts.random(), run_dir=run_dir or Path(scratch), log_level="warn")
        )
        print(f"==> Starting a stack in {stack.run_dir}", file=sys.stderr)
        with stack:
            yield stack


def create_tasks(
    stack: Stack, count: int, window: float, lead: float, users: int, workers: int
) -> dict[str, Any]:
    """Create the tasks; returns {task_id: reminder time} and how long creating took."""
    settings = Settings(env="dev", jwt_secret=DEV_JWT_SECRET)  # type: ignore[arg-type]
    tokens = [issue_token(f"bench-{k}", settings) for k in range(users)]
    start = datetime.now(UTC) + timedelta(seconds=lead)
    times = [start + timedelta(seconds=window * i / count) for i in range(count)]

    def create(i: int) -> tuple[str, datetime, float]:
        body = {
            "title": f"bench {i}",
            "due_at": (times[i] + timedelta(hours=1)).isoformat(),
            "reminders": [{"at": times[i].isoformat()}],
        }
        headers = {"Authorization": f"Bearer {tokens[i % users]}"}
        response = client.post("/v1/tasks", json=body, headers=headers)
        response.raise_for_status()
        return response.json()["id"], times[i], time.time()

    began = time.monotonic()
    with httpx.Client(base_url=stack.app_url, timeout=60) as client, ThreadPoolExecutor(workers) as pool:
        created = list(pool.map(create, range(count)))
    elapsed = time.monotonic() - began
    late_arms = sum(1 for _, at, done in created if done > at.timestamp())
    return {
        "due": {task_id: at for task_id, at, _ in created},
        "create_seconds": elapsed,
        "armed_after_their_time": late_arms,
        "window_start": start,
    }


def _proc_stats() -> list[tuple[int, int, int, float, float]]:
    """(pid, parent, process group, CPU seconds, CPU seconds of its exited
    children) of every process."""
    ticks = os.sysconf("SC_CLK_TCK")
    rows = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        own, exited = int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])
        rows.append((int(entry.name), int(fields[1]), int(fields[2]), own / ticks, exited / ticks))
    return rows


def cpu_seconds(stack: Stack) -> dict[str, float]:
    """CPU used so far by each stack process with its children, live or
    exited (PostgreSQL's backends start sessions of their own and come and go
    with the connection pool), and by the whole machine."""
    stats = _proc_stats()
    used = {}
    for name, process in stack.processes.items():
        pid = process.pid
        live = sum(cpu for p, parent, group, cpu, _ in stats if pid in (p, parent, group))
        used[name] = live + sum(exited for p, _, _, _, exited in stats if p == pid)
    with open("/proc/stat") as totals:
        fields = [int(v) for v in totals.readline().split()[1:8]]
    used["machine_busy"] = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    return used


def wait_for_mail(stack: Stack, due: dict[str, datetime], deadline: float) -> dict[str, float]:
    """{task_id: lateness in seconds} for every email the sink received by `deadline`."""
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


def summarize(lateness: dict[str, float], count: int) -> dict[str, Any]:
    values = list(lateness.values())
    row: dict[str, Any] = {"reminders": count, "delivered": len(values), "early": sum(v < 0 for v in values)}
    if values:
        row |= {
            "p50_s": percentile(values, 0.50),
            "p95_s": percentile(values, 0.95),
            "p99_s": percentile(values, 0.99),
            "max_s": max(values),
            "min_s": min(values),
        }
    return row


def markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    header = "| reminders | window | delivered | early | p50 | p95 | p99 | max |"
    line = f"| {s['reminders']:,} | {result['window_s']:.0f} s | {s['delivered']:,} | {s['early']} " + (
        f"| {s['p50_s'] * 1000:.0f} ms | {s['p95_s'] * 1000:.0f} ms | {s['p99_s'] * 1000:.0f} ms "
        f"| {s['max_s'] * 1000:.0f} ms |"
        if s["delivered"]
        else "| - | - | - | - |"
    )
    cpu = result["cpu"]
    stack = sum(v for k, v in cpu.items() if k not in ("seconds", "machine_capacity_s", "machine_busy_s"))
    busy = cpu["machine_busy_s"] / cpu["machine_capacity_s"]
    notes = (
        f"\nCreated in {result['create_s']:.1f} s "
        f"({result['armed_after_their_time']} armed after their time); {result['machine']['cpus']} CPUs, "
        f"load average {result['machine']['load_before']} before the run. From the window's start to the "
        f"last email ({cpu['seconds']:.1f} s) the machine was {busy:.0%} busy; the stack used "
        f"{stack:.1f} CPU-s ({stack / max(s['delivered'], 1) * 1000:.1f} ms a reminder; "
        f"app {cpu['app-api_s']:.1f}, SMTP sink {cpu['smtp_s']:.1f}, scheduler {cpu['scheduler_s']:.1f}, "
        f"daprd {cpu['daprd-api_s']:.1f}, PostgreSQL {cpu.get('postgres_s', float('nan')):.1f})."
    )
    return "\n".join([header, "|---:|---:|---:|---:|---:|---:|---:|---:|", line]) + notes


def run(args: argparse.Namespace) -> dict[str, Any]:
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    with own_stack(args.run_dir) as stack:
        print(
            f"==> Creating {args.count} tasks with reminders due over {args.window:.0f} s, "
            f"{args.lead:.0f} s from now",
            file=sys.stderr,
        )
        created = create_tasks(stack, args.count, args.window, args.lead, args.users, args.workers)
        print(f"    created in {created['create_seconds']:.1f} s; waiting for the emails", file=sys.stderr)
        until_window = (created["window_start"] - datetime.now(UTC)).total_seconds()
        time.sleep(max(until_window, 0))
        before, started = cpu_seconds(stack), time.monotonic()
        lateness = wait_for_mail(stack, created["due"], started + args.window + args.grace)
        after, elapsed = cpu_seconds(stack), time.monotonic() - started
    return {
        "run_id": str(uuid.uuid4()),
        "at": datetime.now(UTC).isoformat(),
        "window_s": args.window,
        "lead_s": args.lead,
        "create_s": created["create_seconds"],
        "armed_after_their_time": created["armed_after_their_time"],
        "machine": {"cpus": os.cpu_count(), "load_before": load, "python": platform.python_version()},
        # From the window's start to the last email: what the stack and the
        # whole machine (other tenants included) spent, in CPU seconds.
        "cpu": {
            "seconds": elapsed,
            "machine_capacity_s": elapsed * (os.cpu_count() or 1),
            **{f"{name}_s": after[name] - before[name] for name in after},
        },
        "summary": summarize(lateness, args.count),
        # (seconds into the window, lateness) per delivered reminder, for plots.
        "samples": sorted(
            ((created["due"][t] - created["window_start"]).total_seconds(), late)
            for t, late in lateness.items()
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1000, help="reminders (default 1000)")
    parser.add_argument("--window", type=float, default=10.0, help="seconds they fall due over (default 10)")
    parser.add_argument(
        "--lead",
        type=float,
        default=60.0,
        help="seconds from now to the window's start; creating the tasks must fit in it (default 60)",
    )
    parser.add_argument("--users", type=int, default=20, help="users the tasks belong to (default 20)")
    parser.add_argument("--workers", type=int, default=16, help="concurrent create requests (default 16)")
    parser.add_argument(
        "--grace",
        type=float,
        default=120.0,
        help="seconds after the window to wait for stragglers (default 120)",
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        help="keep the stack's data and logs here (default: a temporary directory, removed afterwards)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args()
    if args.count < 1 or args.window <= 0:
        parser.error("--count must be at least 1 and --window positive")

    result = run(args)
    print(markdown(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    summary = result["summary"]
    if summary["delivered"] < summary["reminders"] or summary["early"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
