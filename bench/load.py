"""The load driver the benchmarks and the tests share (bench/, tests/chaos/,
tests/integration/): the stack a load runs on, whom its requests come from,
what they send, how fast (open and closed loops), creating and completing
many tasks, and waiting for what the load caused, read from PostgreSQL.

It lives in bench, the package that exists to drive load, and the tests
import it: bench is checked by mypy strict and runs as `python -m bench`
without the tests' tree or pytest. So nothing here fails through pytest: a
wait that runs out raises WaitTimeout and a refused request Refused, which
the tests report as failures and the bench's runner as the benchmark's error.
What a caller checks about the results stays with the caller.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg

from devstack import progress
from devstack.ports import StackPorts
from devstack.stack import Stack, StackConfig

K = TypeVar("K")
T = TypeVar("T")


def stack_in_new_dir(prefix: str, **config: Any) -> Stack:
    """A stack (not started yet) on free ports, in a new directory of its own.

    Not under pytest's basetemp: pytest makes that 0700 again at every
    session start, which would lock out the unprivileged PostgreSQL user of
    a stack another session (a parallel run) is starting."""
    run_dir = Path(tempfile.mkdtemp(prefix=prefix))
    run_dir.chmod(0o755)  # the unprivileged PostgreSQL user must reach its data dir
    return Stack(StackConfig(ports=StackPorts.random(), run_dir=run_dir, **config))


# ---- who sends ----------------------------------------------------------------------


def token_for(user: str, **claims: Any) -> str:
    """A bearer token for `user`, signed with the dev secret every local stack
    accepts; `claims`: issue_token's email, zoneinfo, ttl_seconds."""
    # Imported here: the API's auth module pulls in FastAPI, which a
    # benchmark that never sends a request does not need.
    from api.auth import issue_token
    from todos.core.settings import DEV_JWT_SECRET, Settings

    return issue_token(user, Settings(env="dev", jwt_secret=DEV_JWT_SECRET), **claims)


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user)}"}


class Users:
    """The users a benchmark's requests come from, in turn: request i as user
    i mod count. A chatbot backend serves many users, and the count shapes
    the work: one user's events form one ordered chain, which the outbox
    relay publishes one event per request (todos/events/relay.py)."""

    def __init__(self, kind: str, count: int) -> None:
        run = uuid.uuid4().hex[:6]
        self.ids = [f"bench-{kind}-{run}-{n}" for n in range(count)]
        self._headers = {user: auth(user) for user in self.ids}

    def __len__(self) -> int:
        return len(self.ids)

    def of(self, index: int) -> str:
        return self.ids[index % len(self.ids)]

    def headers(self, user: str) -> dict[str, str]:
        return self._headers[user]

    def headers_at(self, index: int) -> dict[str, str]:
        """The headers of request `index`, as user `of(index)`."""
        return self._headers[self.of(index)]


# ---- what they send -----------------------------------------------------------------


def due_tomorrow() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0).isoformat()


def recurring_body(
    title: str, *, due_at: str | None = None, rule: str = "daily", timezone: str = "UTC"
) -> dict[str, Any]:
    """A task that starts a series. Due tomorrow unless `due_at`: no timer of
    its workflow fires while a load runs, so only the load moves it on."""
    return {
        "title": title,
        "due_at": due_at or due_tomorrow(),
        "recurrence": {"rule": rule, "timezone": timezone},
    }


def reminded_body(title: str, at: datetime) -> dict[str, Any]:
    """A one-off task with one reminder `at`, due an hour later."""
    return {
        "title": title,
        "due_at": (at + timedelta(hours=1)).isoformat(),
        "reminders": [{"at": at.isoformat()}],
    }


# ---- how fast -----------------------------------------------------------------------


class Bar:
    """A progress line per load on stderr: redrawn in place on a terminal,
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


# ---- creating and completing many -----------------------------------------------------


class Refused(Exception):
    """The stack refused a request the load cannot go on without."""


def create_tasks(
    app_url: str,
    count: int,
    body: Callable[[int], dict[str, Any]],
    headers_at: Callable[[int], dict[str, str]],
    label: str,
    *,
    workers: int = 16,
    budget_s: float | None = None,
    timeout: float = 120,
) -> list[dict[str, Any]]:
    """`POST /v1/tasks` `count` times, request i with `body(i)` and
    `headers_at(i)`, as fast as `workers` concurrent clients go; each must
    answer 201. With `budget_s`, no request starts after that many seconds:
    only the tasks created are returned, in request order."""
    created: list[dict[str, Any]] = [{} for _ in range(count)]
    deadline = time.monotonic() + budget_s if budget_s is not None else float("inf")
    with httpx.Client(base_url=app_url, timeout=timeout) as client:

        def one(index: int) -> None:
            if time.monotonic() > deadline:
                return
            response = client.post("/v1/tasks", json=body(index), headers=headers_at(index))
            if response.status_code != 201:
                raise Refused(f"POST /v1/tasks answered {response.status_code}: {response.text[:300]}")
            created[index] = response.json()

        closed_loop(label, count, workers, one)
    return [task for task in created if task]


def create_series(
    app_url: str, count: int, users: Users, label: str, workers: int = 16, budget_s: float | None = None
) -> list[dict[str, Any]]:
    """Up to `count` daily series (occurrence #1 due tomorrow), request i as
    `users.of(i)`; see create_tasks for `workers` and `budget_s`."""
    return create_tasks(
        app_url,
        count,
        lambda index: recurring_body(f"bench {index}"),
        users.headers_at,
        label,
        workers=workers,
        budget_s=budget_s,
    )


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


# ---- what the load caused, from the source of truth ------------------------------------


class WaitTimeout(TimeoutError):
    """A wait for what the load caused ran out (not a timeout inside a check)."""


def wait_for(check: Callable[[], T], timeout: float, interval: float, what: str) -> T:
    """Call `check` every `interval` seconds until it returns something truthy,
    and return that; WaitTimeout naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def query(database_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchall()


def execute(database_url: str, sql: str, *params: Any) -> int:
    """A statement without results; returns the rows it touched."""
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        return conn.execute(sql, params).rowcount


def wait_workflows_started(database_url: str, series_ids: Sequence[str], timeout: float) -> None:
    """Every series' workflow scheduled (the service records it when daprd
    accepted the start; the first run follows through a scheduler job)."""
    ids = [uuid.UUID(s) for s in series_ids]
    started = "SELECT count(*) FROM series WHERE id = ANY(%s) AND workflow_started_at IS NOT NULL"
    wait_for(
        lambda: query(database_url, started, ids)[0][0] == len(ids),
        timeout=timeout,
        interval=0.5,
        what=f"the workflows of {len(ids)} series to start",
    )


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
