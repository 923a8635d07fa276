"""What every benchmark shares: figures with goals and conditions, the stacks
they run on, load generators, progress lines, and process/machine facts."""

from __future__ import annotations

import math
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
import psycopg

from devstack import progress
from devstack.paths import REPO_ROOT
from devstack.ports import StackPorts
from devstack.stack import Stack, StackConfig

Op = Literal["<=", ">=", "=="]
# How many users a benchmark's requests come from (`--users`).
DEFAULT_USERS = 100
K = TypeVar("K")


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

    def get(self, profile: str) -> Stack:
        if self._current is not None and self._current[0] == profile:
            return self._current[1]
        self.close()
        run_dir = Path(tempfile.mkdtemp(prefix=f"bench-{profile}-"))
        run_dir.chmod(0o755)  # the unprivileged PostgreSQL user must reach its data dir
        stack = Stack(
            StackConfig(
                profile=profile,
                ports=StackPorts.random(),
                run_dir=run_dir,
                log_level="warn",
                api_sidecar_memory_mib=self.api_sidecar_memory_mib,
            )
        )
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
    results: dict[str, Outcome] = field(default_factory=dict)


# ---- load -------------------------------------------------------------------------


def headers_for(user: str) -> dict[str, str]:
    from api.auth import issue_token
    from todos.core.settings import DEV_JWT_SECRET, Settings

    settings = Settings(env="dev", jwt_secret=DEV_JWT_SECRET)
    return {"Authorization": f"Bearer {issue_token(user, settings)}"}


class Users:
    """The users a benchmark's requests come from, in turn: request i as user
    i mod count. A chatbot backend serves many users, and the count shapes
    the work: one user's events form one ordered chain, which the outbox
    relay publishes one event per request (todos/relay.py)."""

    def __init__(self, kind: str, count: int) -> None:
        run = uuid.uuid4().hex[:6]
        self.ids = [f"bench-{kind}-{run}-{n}" for n in range(count)]
        self._headers = {user: headers_for(user) for user in self.ids}

    def __len__(self) -> int:
        return len(self.ids)

    def of(self, index: int) -> str:
        return self.ids[index % len(self.ids)]

    def headers(self, user: str) -> dict[str, str]:
        return self._headers[user]

    def headers_at(self, index: int) -> dict[str, str]:
        """The headers of request `index`, as user `of(index)`."""
        return self._headers[self.of(index)]


def due_tomorrow() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0).isoformat()


def recurring_body(title: str) -> dict[str, Any]:
    return {"title": title, "due_at": due_tomorrow(), "recurrence": {"rule": "daily", "timezone": "UTC"}}


class Bar:
    """A progress line per benchmark on stderr: redrawn in place on a terminal,
    one line per tenth of the way in a CI log."""

    def __init__(self, label: str, total: int) -> None:
        self.counter = progress.Counter(label, total)
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.counter.advance(n)

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.counter.finish()


@dataclass
class Shot:
    """One request of a load run: when it was due to go, how long it took."""

    index: int
    due: float  # epoch seconds
    seconds: float
    ok: bool
    detail: str = ""


def open_loop(
    label: str, count: int, rate: float, send: Callable[[int], tuple[bool, str]], workers: int = 0
) -> list[Shot]:
    """Request i goes at start + i/rate whatever the others do (a slow answer
    does not slow the offered load); latency counts from that due time, so a
    late sender is charged to the system, not hidden."""
    pool_size = workers or max(16, int(rate))
    start = time.time() + 0.2
    shots: list[Shot] = []
    lock = threading.Lock()

    with Bar(f"{label}: {count} at {rate:g}/s", count) as bar:

        def fire(index: int) -> None:
            due = start + index / rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            ok, detail = send(index)
            shot = Shot(index, due, time.time() - due, ok, detail)
            with lock:
                shots.append(shot)
            bar.advance()

        with ThreadPoolExecutor(pool_size) as pool:
            list(pool.map(fire, range(count)))
    return sorted(shots, key=lambda s: s.index)


def closed_loop(label: str, count: int, workers: int, send: Callable[[int], object]) -> float:
    """As fast as `workers` concurrent senders go; returns the elapsed seconds."""
    started = time.monotonic()
    with Bar(label, count) as bar, ThreadPoolExecutor(workers) as pool:

        def one(index: int) -> None:
            send(index)
            bar.advance()

        list(pool.map(one, range(count)))
    return time.monotonic() - started


def http_send(
    client: httpx.Client,
    method: str,
    path: Callable[[K], str],
    expect: int,
    headers: Callable[[K], dict[str, str]],
    **kwargs: Any,
) -> Callable[[K], tuple[bool, str]]:
    """A sender for the load loops: (answered as expected, what went wrong)."""

    def send(key: K) -> tuple[bool, str]:
        try:
            response = client.request(method, path(key), headers=headers(key), **kwargs)
        except httpx.HTTPError as error:
            return False, repr(error)
        return response.status_code == expect, "" if response.status_code == expect else response.text[:200]

    return send


def create_series(
    stack: Stack, count: int, users: Users, label: str, workers: int = 16, budget_s: float | None = None
) -> list[dict[str, Any]]:
    """Up to `count` daily series (occurrence #1 due tomorrow), created as fast
    as `workers` concurrent clients go; with `budget_s`, no new one is started
    after that many seconds, and only those created are returned."""
    created: list[dict[str, Any]] = [{} for _ in range(count)]
    deadline = time.monotonic() + budget_s if budget_s is not None else float("inf")
    with httpx.Client(base_url=stack.app_url, timeout=120) as client:

        def one(index: int) -> None:
            if time.monotonic() > deadline:
                return
            response = client.post(
                "/v1/tasks", json=recurring_body(f"bench {index}"), headers=users.headers_at(index)
            )
            response.raise_for_status()
            created[index] = response.json()

        closed_loop(label, count, workers, one)
    return [task for task in created if task]


def completion_sender(
    client: httpx.Client, tasks: Sequence[dict[str, Any]], users: Users
) -> Callable[[str], tuple[bool, str]]:
    """Completes a series' current task (the key is the series id) as its owner."""
    task_of = {task["series_id"]: task for task in tasks}
    return http_send(
        client,
        "POST",
        lambda series: f"/v1/tasks/{task_of[series]['id']}/complete",
        200,
        headers=lambda series: users.headers(task_of[series]["user_id"]),
    )


def wait_workflows_started(database_url: str, series_ids: Sequence[str], timeout: float) -> None:
    """Every series' workflow scheduled (the service records it when daprd
    accepted the start; the first run follows through a scheduler job, see
    wait_engine_idle)."""
    ids = [uuid.UUID(s) for s in series_ids]
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM series WHERE id = ANY(%s) AND workflow_started_at IS NOT NULL", (ids,)
            ).fetchone()
            if row is not None and row[0] == len(ids):
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"only {row[0] if row else 0}/{len(ids)} series' workflows started in time")
            time.sleep(0.5)


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


def next_task_times(database_url: str, series_ids: Sequence[str], timeout: float) -> dict[str, float]:
    """{series id: epoch seconds its occurrence #2 was created (committed by
    the workflow's activity)}, waiting until all are there or `timeout`."""
    ids = [uuid.UUID(s) for s in series_ids]
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url) as conn:
        while True:
            rows = conn.execute(
                "SELECT series_id, extract(epoch FROM created_at) FROM tasks "
                "WHERE series_id = ANY(%s) AND occurrence_index = 2",
                (ids,),
            ).fetchall()
            if len(rows) == len(ids) or time.monotonic() > deadline:
                return {str(series): float(at) for series, at in rows}
            time.sleep(0.5)


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
