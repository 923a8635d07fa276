"""What every benchmark shares: figures with goals and conditions, the stacks
they run on, the engine's and the outbox's backlogs, and process/machine
facts. The load itself (users, bodies, open and closed loops) is bench/load.py,
which the tests drive their stacks with too."""

from __future__ import annotations

import math
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import psycopg

from bench.load import stack_in_new_dir
from devstack import progress
from devstack.paths import REPO_ROOT
from devstack.stack import Stack

Op = Literal["<=", ">=", "=="]
# How many users a benchmark's requests come from (`--users`).
DEFAULT_USERS = 100


@dataclass(frozen=True)
class Goal:
    op: Op
    target: float

    def met(self, value: float | None) -> bool | None:
        if value is None or value != value:  # unmeasured or NaN
            return None
        if self.op == "<=":
            return value <= self.target
        if self.op == ">=":
            return value >= self.target
        return value == self.target


@dataclass
class Figure:
    """One measured number, with the conditions it was measured under."""

    name: str
    value: float | None
    unit: str  # "s", "/s", "bytes", "count", "ratio", "us"
    conditions: dict[str, Any]
    goal: Goal | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        met = self.goal.met(self.value) if self.goal else None
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "goal": {"op": self.goal.op, "target": self.goal.target} if self.goal else None,
            "status": None if self.goal is None else {True: "PASS", False: "MISS", None: "n/a"}[met],
            "conditions": self.conditions,
            "note": self.note,
        }


@dataclass
class Outcome:
    """What a benchmark returns: its figures plus raw details for the JSON."""

    figures: list[Figure]
    details: dict[str, Any] = field(default_factory=dict)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def latency_figures(
    label: str, values: Sequence[float], conditions: dict[str, Any], goal_p95: float | None
) -> list[Figure]:
    """p50, p95 (with the goal), p99 and max of a latency sample, in seconds."""
    figures = [
        Figure(f"{label} p50", percentile(values, 0.50), "s", conditions),
        Figure(
            f"{label} p95",
            percentile(values, 0.95),
            "s",
            conditions,
            Goal("<=", goal_p95) if goal_p95 is not None else None,
        ),
        Figure(f"{label} p99", percentile(values, 0.99), "s", conditions),
        Figure(f"{label} max", max(values) if values else float("nan"), "s", conditions),
    ]
    return figures


# ---- the machine and its processes ------------------------------------------------


def _first_line_with(path: str, prefix: str) -> str:
    try:
        with open(path) as lines:
            for line in lines:
                if line.startswith(prefix):
                    return (line.split(":", 1)[1] if ":" in line else line[len(prefix) :]).strip()
    except OSError:
        pass
    return "unknown"


def _git(*args: str) -> str:
    result = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    return result.stdout.strip()


def loadavg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def machine() -> dict[str, Any]:
    mem_kib = int(_first_line_with("/proc/meminfo", "MemTotal").split()[0])
    return {
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "cpu_model": _first_line_with("/proc/cpuinfo", "model name"),
        "os": _first_line_with("/etc/os-release", "PRETTY_NAME=").strip('"'),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def _proc_table() -> tuple[dict[int, int], dict[int, float], dict[int, int]]:
    """(parent, CPU seconds including exited children, RSS bytes) per pid, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        cpu[pid] = sum(int(v) for v in fields[11:15]) / tick
        rss[pid] = int(fields[21]) * page
    return parent, cpu, rss


def _tree_totals(roots: dict[str, int], values: dict[int, float], parent: dict[int, int]) -> dict[str, float]:
    """Sum a per-pid value over each named root and its descendants (PostgreSQL
    backends, JVM threads)."""
    by_root = {pid: name for name, pid in roots.items()}
    totals = dict.fromkeys(roots, 0.0)
    for pid, value in values.items():
        walk = pid
        while walk > 1 and walk not in by_root:
            walk = parent.get(walk, 0)
        if walk in by_root:
            totals[by_root[walk]] += value
    return totals


def stack_roots(stack: Stack) -> dict[str, int]:
    return {name: p.pid for name, p in stack.processes.items() if p.pid is not None and p.running()}


def cpu_seconds(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each named process with its descendants, live or exited."""
    parent, cpu, _ = _proc_table()
    return _tree_totals(roots, cpu, parent)


def rss_bytes(roots: dict[str, int]) -> dict[str, int]:
    """Resident memory of each named process with its descendants."""
    parent, _, rss = _proc_table()
    return {
        name: int(v) for name, v in _tree_totals(roots, {k: float(v) for k, v in rss.items()}, parent).items()
    }


def cpu_used(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Cores busy per process between two cpu_seconds() readings."""
    return {name: round((after[name] - before.get(name, 0.0)) / seconds, 2) for name in after}


# ---- stacks -------------------------------------------------------------------------


class Stacks:
    """One stack per profile, started on first use and shared by the benchmarks
    that follow; starting another profile stops the previous one, so two stacks
    never compete for the machine's cores."""

    def __init__(self, keep: bool, api_sidecar_memory_mib: int | None = None) -> None:
        self.keep = keep
        self.api_sidecar_memory_mib = api_sidecar_memory_mib
        self._current: tuple[str, Stack, Path] | None = None

    def get(self, profile: str, *, fresh: bool = False) -> Stack:
        """The profile's stack; `fresh`: a new one even if that profile's runs, for a benchmark
        that measures what the stack holds from empty."""
        if not fresh and self._current is not None and self._current[0] == profile:
            return self._current[1]
        self.close()
        stack = stack_in_new_dir(
            f"bench-{profile}-",
            profile=profile,
            log_level="warn",
            api_sidecar_memory_mib=self.api_sidecar_memory_mib,
        )
        run_dir = stack.run_dir
        with progress.step(f"Starting a {profile}-profile stack in {run_dir}"):
            try:
                stack.start()
            except BaseException:
                stack.stop()
                raise
        self._current = (profile, stack, run_dir)
        return stack

    def close(self) -> None:
        if self._current is None:
            return
        _, stack, run_dir = self._current
        self._current = None
        stack.stop()
        if self.keep:
            progress.say(f"    kept the stack's data and logs in {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)


@dataclass
class Context:
    """What a benchmark gets: the stacks, the run's options, earlier results."""

    stacks: Stacks
    quick: bool
    series: int | None
    scale_minutes: float | None = None
    users: int = DEFAULT_USERS
    profile: bool = False
    results: dict[str, Outcome] = field(default_factory=dict)


# ---- the engine's backlog -------------------------------------------------------------


def _scheduler_triggers(stack: Stack) -> float:
    text = httpx.get(f"http://127.0.0.1:{stack.ports.scheduler_metrics}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("dapr_scheduler_jobs_triggered_total")
    )


def wait_engine_idle(stack: Stack, timeout: float, quiet_s: float = 5.0) -> float:
    """Wait until the scheduler has triggered no job for `quiet_s` seconds: a
    workflow start or event is run through a scheduler job, so a backlog of
    them (after creating thousands of series) would otherwise sit in front
    of the steps a benchmark measures. Returns the seconds until the last
    trigger (the quiet period that proves it is not counted)."""
    started = time.monotonic()
    last, quiet_since = _scheduler_triggers(stack), time.monotonic()
    with progress.step("Waiting for the workflow engine to finish its backlog (scheduler triggers stop)"):
        while time.monotonic() - quiet_since < quiet_s:
            if time.monotonic() - started > timeout:
                raise SystemExit(f"the scheduler was still triggering jobs after {timeout:.0f}s")
            time.sleep(1)
            now = _scheduler_triggers(stack)
            if now != last:
                last, quiet_since = now, time.monotonic()
    return quiet_since - started


def wait_stack_idle(stack: Stack, timeout: float) -> tuple[float, float]:
    """Before a measurement: the engine's backlog, then the outbox's, done,
    both within `timeout`. Returns (engine backlog, outbox backlog) in seconds."""
    started = time.monotonic()
    engine_s = wait_engine_idle(stack, timeout)
    # The engine's wait also spent its quiet period, which engine_s leaves out.
    return engine_s, _wait_outbox_drained(stack, timeout - (time.monotonic() - started))


def _wait_outbox_drained(stack: Stack, timeout: float) -> float:
    """Wait until the outbox holds no unpublished event: the relay and the
    audit role work through the events of what came before (thousands of
    series created, a burst of steps) for seconds after it, on the same
    cores as the next measurement. Returns the seconds waited."""
    started = time.monotonic()
    with (
        progress.step("Waiting for the outbox relay to publish what is pending"),
        psycopg.connect(stack.database_url, autocommit=True) as conn,
    ):
        while conn.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone() != (0,):
            if time.monotonic() - started > timeout:
                raise SystemExit(f"the outbox still held unpublished events after {timeout:.0f}s")
            time.sleep(0.5)
    return time.monotonic() - started


@contextmanager
def measured(stack: Stack) -> Iterator[dict[str, Any]]:
    """CPU cores each stack process (and this bench process) used during the block."""
    roots = {**stack_roots(stack), "bench (load generator)": os.getpid()}
    facts: dict[str, Any] = {"load_before": loadavg()}
    before, started = cpu_seconds(roots), time.monotonic()
    yield facts
    elapsed = time.monotonic() - started
    facts["cores_used"] = cpu_used(before, cpu_seconds(roots), elapsed)
    facts["load_after"] = loadavg()
