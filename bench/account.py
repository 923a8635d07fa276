"""account: what one series step costs, process by process, counted in one run.

Measures how much every process spends at rest, then creates one daily
series per step to come (16 clients, as scale does) and waits until their
workflows started and the stack is idle: the cost of creating a series.
Then completes every series' task (a few clients, closed loop: the cost,
not the capacity) and waits until every next occurrence is committed and
the stack is idle again: the cost of a step. Every counter is read before
and after each phase, and the difference, less what the stack spends at
rest over the same time, is divided by the series or steps:

- CPU seconds of each stack process with its children (/proc);
- SQL statements and transactions of each app role (`todo_db_*`);
- gRPC calls each sidecar served, by method (`dapr_grpc_io_server_completed_rpcs`),
  and the HTTP requests it served (`dapr_http_server_request_count`);
- jobs the scheduler triggered; events written to the outbox and rows the
  audit role stored.

`--profile` also samples the api app with py-spy during the steps and keeps
the collapsed stacks in bench/results/account-profile.txt; the busiest
frames go into the details.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.harness import Context, Figure, Outcome, cpu_seconds, stack_roots, wait_stack_idle
from bench.load import (
    Users,
    closed_loop,
    completion_sender,
    create_series,
    next_task_times,
    query,
    wait_workflows_started,
)
from devstack import progress
from devstack.paths import REPO_ROOT
from devstack.roles import API, AUDIT
from devstack.stack import Stack

NAME = "account"
PROFILE = "default"
CLIENTS = 8
CREATE_CLIENTS = 16  # as scale creates series
REST_SECONDS = 10.0
PROFILE_FILE = REPO_ROOT / "bench" / "results" / "account-profile.txt"
SIDECAR_CALLS = "dapr_grpc_io_server_completed_rpcs"
SIDECAR_HTTP = "dapr_http_server_request_count"


@dataclass(frozen=True)
class Reading:
    """Every counter the account reads, at one moment."""

    at: float
    cpu: dict[str, float]
    counters: dict[str, float]


def _metrics(url: str) -> list[Any]:
    return list(text_string_to_metric_families(httpx.get(url, timeout=10).text))


def _app_counters(stack: Stack, role: str, port: int) -> dict[str, float]:
    counts: defaultdict[str, float] = defaultdict(float)
    for family in _metrics(f"http://127.0.0.1:{port}/metrics"):
        for sample in family.samples:
            if sample.name == "todo_db_statements_total":
                counts[f"{role}: SQL statements"] += sample.value
            elif sample.name == "todo_db_transactions_total":
                counts[f"{role}: transactions ({sample.labels['outcome']})"] += sample.value
    return counts


def _sidecar_counters(role: str, port: int) -> dict[str, float]:
    counts: defaultdict[str, float] = defaultdict(float)
    for family in _metrics(f"http://127.0.0.1:{port}/metrics"):
        for sample in family.samples:
            if sample.name.startswith(SIDECAR_CALLS) and not sample.name.endswith("_created"):
                method = sample.labels.get("grpc_server_method", "?").rsplit("/", 1)[-1]
                counts[f"daprd-{role}: gRPC {method}"] += sample.value
            elif sample.name.startswith(SIDECAR_HTTP) and not sample.name.endswith("_created"):
                counts[f"daprd-{role}: HTTP requests"] += sample.value
    return counts


def _scheduler_triggers(stack: Stack) -> float:
    families = _metrics(f"http://127.0.0.1:{stack.ports.scheduler_metrics}/metrics")
    return sum(
        s.value
        for f in families
        for s in f.samples
        if s.name.startswith("dapr_scheduler_jobs_triggered") and not s.name.endswith("_created")
    )


def read(stack: Stack) -> Reading:
    counts: dict[str, float] = {}
    for role in (API, AUDIT):  # every key names its process: no two overlap
        counts |= _app_counters(stack, role.name, role.app_port(stack.ports))
        counts |= _sidecar_counters(role.name, role.sidecar(stack.ports).metrics)
    counts["scheduler: jobs triggered"] = _scheduler_triggers(stack)
    ((outbox, audit),) = query(
        stack.database_url,
        "SELECT (SELECT coalesce(max(id), 0) FROM outbox), (SELECT coalesce(max(id), 0) FROM audit_log)",
    )
    counts["events written to the outbox"] = outbox
    counts["events stored by the audit role"] = audit
    return Reading(time.monotonic(), cpu_seconds(stack_roots(stack)), counts)


def _grown(start: dict[str, float], end: dict[str, float]) -> dict[str, float]:
    return {key: end[key] - start.get(key, 0.0) for key in end}


def per_step(rest: tuple[Reading, Reading], before: Reading, after: Reading, steps: int) -> dict[str, Any]:
    """The counters' growth over the steps less their growth at rest over as long, per step."""
    scale = (after.at - before.at) / (rest[1].at - rest[0].at)

    def net(grown: dict[str, float], idle: dict[str, float]) -> dict[str, float]:
        return {key: (value - idle.get(key, 0.0) * scale) / steps for key, value in sorted(grown.items())}

    cpu = net(_grown(before.cpu, after.cpu), _grown(rest[0].cpu, rest[1].cpu))
    counts = net(_grown(before.counters, after.counters), _grown(rest[0].counters, rest[1].counters))
    return {"cpu_seconds": cpu, "counts": {k: v for k, v in counts.items() if abs(v) >= 0.005}}


def wait_audit_settled(stack: Stack, quiet_s: float = 3.0, timeout: float = 300) -> None:
    """The outbox is drained once the relay published; the audit role may still
    be storing the last deliveries."""
    started, last, quiet_since = time.monotonic(), -1, time.monotonic()
    with progress.step("Waiting for the audit role to store the last events"):
        while time.monotonic() - quiet_since < quiet_s:
            if time.monotonic() - started > timeout:
                raise SystemExit(f"the audit log was still growing after {timeout:.0f}s")
            ((now,),) = query(stack.database_url, "SELECT coalesce(max(id), 0) FROM audit_log")
            if now != last:
                last, quiet_since = now, time.monotonic()
            time.sleep(0.5)


@contextmanager
def sampled(pid: int | None, enabled: bool) -> Iterator[dict[str, Any]]:
    """py-spy samples `pid` during the block when `enabled`; the busiest frames
    (own time) go into the yielded dict."""
    found: dict[str, Any] = {}
    spy = shutil.which("py-spy", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    if not enabled or pid is None:
        yield found
        return
    if spy is None:
        raise SystemExit("--profile needs py-spy (in the dev dependencies: ./task sync installs it)")
    PROFILE_FILE.parent.mkdir(parents=True, exist_ok=True)
    command = [spy, "record", "--pid", str(pid), "--rate", "100", "--nonblocking"]
    command += ["--format", "raw", "--output", str(PROFILE_FILE)]
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield found
    finally:
        recorder.send_signal(signal.SIGINT)
        _, errors = recorder.communicate(timeout=60)
    if recorder.returncode != 0 or not PROFILE_FILE.exists():
        raise SystemExit(f"py-spy failed ({recorder.returncode}): {errors.strip()[-500:]}")
    found |= busiest_frames(PROFILE_FILE.read_text())
    found["file"] = str(PROFILE_FILE.relative_to(REPO_ROOT))


def busiest_frames(collapsed: str, top: int = 15) -> dict[str, Any]:
    """From py-spy's collapsed stacks ("frame;frame;frame count" lines): the
    share of samples each innermost frame (own) and each frame anywhere on the
    stack (total) takes."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        samples += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            total[frame] += int(count)
    share = (lambda n: round(n / samples, 3)) if samples else (lambda n: 0.0)
    return {
        "samples": samples,
        "own": [(frame, share(n)) for frame, n in own.most_common(top)],
        "total": [(frame, share(n)) for frame, n in total.most_common(top) if n < samples],
    }


def _figures(what: str, account: dict[str, Any], conditions: dict[str, Any]) -> list[Figure]:
    """`what`: "step" or "series created"; a process's CPU within half a millisecond of
    nothing (one that took no part, such as a stopped floor's) is left out."""
    cpu = {name: value for name, value in account["cpu_seconds"].items() if abs(value) >= 0.0005}
    figures = [Figure(f"account: CPU per {what}, all processes", sum(cpu.values()), "s", conditions)]
    figures += [
        Figure(f"account: CPU per {what}, {name}", value, "s", conditions) for name, value in cpu.items()
    ]
    figures += [
        Figure(f"account: {name} per {what}", v, f"per {what}", conditions)
        for name, v in account["counts"].items()
    ]
    return figures


def run(ctx: Context) -> Outcome:
    stack = ctx.stacks.get(PROFILE)
    steps = 20 if ctx.quick else 600
    users = Users("account", ctx.users)
    wait_stack_idle(stack, timeout=600)
    with progress.step(f"Measuring the stack at rest for {REST_SECONDS:.0f}s"):
        rest = (read(stack), read_after(stack, REST_SECONDS))
    # Series creation: the request (task, series, event) and the workflow's start and first generation.
    before_creating = read(stack)
    tasks = create_series(stack.app_url, steps, users, f"creating {steps} series", workers=CREATE_CLIENTS)
    series = [t["series_id"] for t in tasks]
    wait_workflows_started(stack.database_url, series, timeout=600)
    wait_stack_idle(stack, timeout=600)
    wait_audit_settled(stack)
    creation = per_step(rest, before_creating, read(stack), steps)
    before = read(stack)
    api_pid = stack.processes[f"app-{API.name}"].pid
    with (
        sampled(api_pid, ctx.profile) as profile,
        httpx.Client(base_url=stack.app_url, timeout=120) as client,
    ):
        send = completion_sender(client, tasks, users)

        def complete(index: int) -> None:
            ok, detail = send(series[index])
            if not ok:
                raise SystemExit(f"account: a completion failed: {detail}")

        closed_loop(f"completing {steps} tasks with {CLIENTS} clients", steps, CLIENTS, complete)
        next_task_times(stack.database_url, series, timeout=300)
        wait_stack_idle(stack, timeout=600)
        wait_audit_settled(stack)
    account = per_step(rest, before, read(stack), steps)
    conditions = {"steps": steps, "clients": CLIENTS, "load": "closed loop", "users": len(users)}
    created = {"series": steps, "clients": CREATE_CLIENTS, "load": "closed loop", "users": len(users)}
    return Outcome(
        [*_figures("step", account, conditions), *_figures("series created", creation, created)],
        {"per_step": account, "per_series_created": creation, "profile": profile},
    )


def read_after(stack: Stack, seconds: float) -> Reading:
    time.sleep(seconds)
    return read(stack)
