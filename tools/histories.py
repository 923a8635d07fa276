"""`./task histories` (python -m tools.histories): capture the workflow
histories that tests/unit/workflows/test_recorded_histories.py replays.

Starts a stack of its own on free ports, drives one series down each path
the workflow has, and writes what `./task wf -- export-history` exports for
it into tests/data/histories/<path>.json. A generation's history lasts until
it continues as new, so a path that continues is captured while its last
activity waits for the database:

- a step's `create_next_occurrence` waits on an uncommitted row holding the
  occurrence's unique key (series, index), which the activity's insert must
  wait for; nothing else is held, so the completion, skip or resume that
  wakes the generation goes through;
- `load_series_progress` waits on an ACCESS EXCLUSIVE lock of `series`.

Where the change that wakes the generation needs the series' lock itself (a
skip, a resume, a pause, a rule change), the instance is suspended (Dapr
SUSPENDED) while the change commits and resumed once the activity is held,
so those histories also hold Dapr's suspend and resume events.

Paths that end the workflow (stopped, finished by COUNT or UNTIL) are
captured complete. Both step shapes come from stacks set to each.

    ./task histories                    # every path, into tests/data/histories
    ./task histories -- --out /tmp/h    # elsewhere
    ./task histories -- --only reopened # one path, beside the histories already there
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from api.ops_cli import Operator
from bench.load import auth, stack_in_new_dir
from devstack import progress
from devstack.paths import REPO_ROOT
from devstack.stack import Stack
from todos.dapr import DaprWorkflowGateway
from todos.series.contract import (
    CREATE_NEXT_OCCURRENCE,
    LOAD_SERIES_PROGRESS,
    SeriesState,
    instance_id,
)

CORPUS = REPO_ROOT / "tests" / "data" / "histories"
WAIT_S = 60.0


def _scheduled(events: list[dict[str, Any]], name: str) -> int:
    return sum(e.get("taskScheduled", {}).get("name") == name for e in events)


class Capture:
    """One stack's series, their workflows and the database under them."""

    def __init__(self, stack: Stack, out: Path, shape: int) -> None:
        self.stack = stack
        self.out = out
        self.shape = shape
        self.user = f"histories-{uuid.uuid4().hex[:8]}"
        self.http = httpx.Client(base_url=stack.app_url, headers=auth(self.user), timeout=30)
        self.gateway = DaprWorkflowGateway(host="127.0.0.1", port=stack.ports.app_sidecar.grpc)
        self.operator = Operator(self.gateway, "the capture stack's api sidecar")

    def close(self) -> None:
        self.http.close()
        self.gateway.close()

    # ---- the REST contract -------------------------------------------------------------

    def call(self, method: str, path: str, **body: Any) -> dict[str, Any]:
        response = self.http.request(method, path, json=body or None)
        if response.status_code >= 400:
            raise SystemExit(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else {}

    def new_series(self, rule: str = "FREQ=DAILY", **extra: Any) -> dict[str, Any]:
        due = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0).isoformat()
        task = self.call(
            "POST", "/v1/tasks", title="Water the ferns", due_at=due, recurrence={"rule": rule}, **extra
        )
        self.wait_for(task, lambda info: info is not None and info.runtime_status == "RUNNING", "running")
        return task

    # ---- the workflow ----------------------------------------------------------------

    def wait_for(self, task: dict[str, Any], check: Callable[[Any], bool], what: str) -> Any:
        instance = instance_id(task["series_id"])
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            info = self.gateway.describe(instance)
            if check(info):
                return info
            time.sleep(0.2)
        raise SystemExit(f"{instance}: not {what} after {WAIT_S:.0f}s")

    def settled(self, task: dict[str, Any], check: Callable[[SeriesState], bool], what: str) -> None:
        """The series' current generation began with a state that passes `check`."""

        def began(info: Any) -> bool:
            return (
                info is not None
                and bool(info.serialized_input)
                and check(SeriesState.model_validate(json.loads(info.serialized_input)))
            )

        self.wait_for(task, began, what)

    def export(
        self, name: str, task: dict[str, Any], path: str, ready: Callable[[list[dict[str, Any]]], bool]
    ) -> None:
        instance = instance_id(task["series_id"])
        deadline = time.monotonic() + WAIT_S
        while not ready(self.gateway.history(instance)):
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: the history of {instance} never reached the point to capture")
            time.sleep(0.2)
        history = self.operator.history(instance, path)
        history["step_shape_setting"] = self.shape
        (self.out / f"{name}.json").write_text(json.dumps(history, indent=1) + "\n")
        progress.say(f"    {name}: {len(history['events'])} events ({history['runtime_status']})")

    # ---- holding an activity ------------------------------------------------------------

    def suspended(self, task: dict[str, Any], change: Callable[[], object]) -> None:
        """Make `change` while the instance is suspended (Dapr SUSPENDED), so its
        event waits until resume(): what holds an activity can then be taken
        after the change committed and before the generation acts on it."""
        self.operator.act(instance_id(task["series_id"]), "pause")
        change()

    def resume(self, task: dict[str, Any]) -> None:
        self.operator.act(instance_id(task["series_id"]), "resume")

    @contextmanager
    def next_occurrence_held(self, task: dict[str, Any]) -> Iterator[None]:
        """create_next_occurrence's insert of the series' next task waits until the block ends."""
        with psycopg.connect(self.stack.database_url) as conn:
            conn.execute(
                "INSERT INTO tasks (id, user_id, title, priority, tags, status, reminders, series_id,"
                " occurrence_index, created_at, updated_at)"
                " SELECT %s, t.user_id, t.title, t.priority, t.tags, 'pending', '[]', t.series_id,"
                " s.occurrence_index + 1, now(), now()"
                " FROM series s JOIN tasks t ON t.id = s.current_task_id WHERE s.id = %s",
                (uuid.uuid4(), task["series_id"]),
            )
            try:
                yield
            finally:
                conn.rollback()

    @contextmanager
    def loads_held(self) -> Iterator[None]:
        """load_series_progress (and everything else that reads `series`) waits until the block ends."""
        with psycopg.connect(self.stack.database_url) as conn:
            conn.execute("LOCK TABLE series IN ACCESS EXCLUSIVE MODE")
            try:
                yield
            finally:
                conn.rollback()


def creating(events: list[dict[str, Any]]) -> bool:
    return _scheduled(events, CREATE_NEXT_OCCURRENCE) > 0


def loading(events: list[dict[str, Any]]) -> bool:
    return _scheduled(events, LOAD_SERIES_PROGRESS) > 0


def ended(events: list[dict[str, Any]]) -> bool:
    return any("executionCompleted" in e for e in events)


def step_paths(c: Capture) -> None:
    """What a completion does, in this stack's step shape."""
    shape = c.shape
    c.export(
        f"shape{shape}-started-waiting",
        c.new_series(),
        "a new series' first generation, waiting",
        lambda e: True,
    )

    steps: tuple[tuple[str, list[dict[str, str]], str], ...] = (
        ("step-creating", [], "woken by its completion, creating the next occurrence"),
        ("step-with-reminders-creating", [{"before": "PT15M"}], "a step whose occurrence has reminders"),
    )
    for name, reminders, path in steps:
        task = c.new_series(reminders=reminders)
        with c.next_occurrence_held(task):
            c.call("POST", f"/v1/tasks/{task['id']}/complete")
            c.export(f"shape{shape}-{name}", task, path, creating)

    task = c.new_series()
    c.suspended(task, lambda: c.call("POST", f"/v1/series/{task['series_id']}/skip"))
    with c.next_occurrence_held(task):
        c.resume(task)
        c.export(
            f"shape{shape}-skipped-creating", task, "woken by a skip, creating the next occurrence", creating
        )

    task = c.new_series()
    c.call("POST", f"/v1/series/{task['series_id']}/pause")
    c.settled(task, lambda state: state.paused, "paused")
    c.call("POST", f"/v1/tasks/{task['id']}/complete")
    c.suspended(task, lambda: c.call("POST", f"/v1/series/{task['series_id']}/resume"))
    with c.next_occurrence_held(task):
        c.resume(task)
        c.export(f"shape{shape}-resumed-creating", task, "resumed after a completion while paused", creating)


def hold_and_end_paths(c: Capture) -> None:
    """Generations that read the series and hold, and the ones that end it."""
    task = c.new_series()
    c.suspended(task, lambda: c.call("POST", f"/v1/series/{task['series_id']}/pause"))
    with c.loads_held():
        c.resume(task)
        c.export("paused-loading", task, "woken by its pause, reading", loading)

    task = c.new_series()
    c.suspended(task, lambda: c.call("PATCH", f"/v1/tasks/{task['id']}", recurrence={"rule": "FREQ=WEEKLY"}))
    with c.loads_held():
        c.resume(task)
        c.export("rule-changed-loading", task, "woken by a rule change, reading", loading)

    task = c.new_series()
    c.call("POST", f"/v1/series/{task['series_id']}/stop")
    c.export("stopped", task, "stopped: the generation ends the workflow", ended)

    for name, rule in (("finished-count", "FREQ=DAILY;COUNT=2"), ("finished-until", None)):
        if rule is None:
            until = (datetime.now(UTC) + timedelta(days=2, hours=12)).strftime("%Y%m%dT%H%M%SZ")
            rule = f"FREQ=DAILY;UNTIL={until}"
        task = c.new_series(rule)
        c.call("POST", f"/v1/tasks/{task['id']}/complete")
        c.settled(task, lambda state: state.occurrence_index == 2, "at occurrence 2")
        second = c.call("GET", f"/v1/tasks?series_id={task['series_id']}&status=pending")["items"][0]
        c.call("POST", f"/v1/tasks/{second['id']}/complete")
        c.export(name, task, f"the rule ({rule.split(';')[1].split('=')[0]}) used up: finished", ended)


def steered_dates(c: Capture) -> None:
    """A state carrying EXDATEs and RDATEs: a date skipped and one moved ahead, then a step."""
    task = c.new_series()
    series = task["series_id"]
    ahead = [o["due_at"] for o in c.call("GET", f"/v1/series/{series}/occurrences?limit=3")["occurrences"]]
    moved_to = (datetime.fromisoformat(ahead[2]) + timedelta(hours=5)).isoformat()
    c.call("POST", f"/v1/series/{series}/skip", due_at=ahead[1])
    c.call("POST", f"/v1/series/{series}/move", due_at=ahead[2], to=moved_to)
    c.settled(task, lambda state: len(state.exdates) == 2 and len(state.rdates) == 1, "with its dates read")
    with c.next_occurrence_held(task):
        c.call("POST", f"/v1/tasks/{task['id']}/complete")
        c.export(
            f"shape{c.shape}-dates-steered-creating",
            task,
            "a date skipped and one moved ahead, then the step to the moved one",
            creating,
        )


def reopened(c: Capture) -> None:
    """A generation woken by a reopen (task_reopened), reading the series stepped back."""
    task = c.new_series()
    c.call("POST", f"/v1/tasks/{task['id']}/complete")
    c.settled(task, lambda state: state.occurrence_index == 2, "at occurrence 2")
    c.suspended(task, lambda: c.call("POST", f"/v1/tasks/{task['id']}/reopen"))
    with c.loads_held():
        c.resume(task)
        c.export("reopened-loading", task, "woken by a reopen of occurrence 1, reading", loading)


def older_wait_shape(c: Capture) -> None:
    """A generation begun by a deploy before sentinel-free waits (wait_shape 1):
    its input has neither wait_shape nor step_shape, as that deploy wrote it."""
    task = c.new_series()
    instance = instance_id(task["series_id"])
    info = c.gateway.describe(instance)
    assert info is not None and info.serialized_input
    state = json.loads(info.serialized_input)
    old = {
        k: v for k, v in state.items() if k not in ("wait_shape", "step_shape", "current_due", "last_error")
    }
    c.operator.act(instance, "terminate")
    c.operator.act(instance, "purge")
    # Started as that deploy started it; the gateway only starts from a SeriesState.
    c.gateway._workflows().schedule_new_workflow("recurring_task_workflow", input=old, instance_id=instance)
    c.settled(task, lambda s: s.wait_shape == 1, "restarted with the older input")
    with c.next_occurrence_held(task):
        c.call("POST", f"/v1/tasks/{task['id']}/complete")
        c.export(
            "sdk-waits-step-creating",
            task,
            "sentinel timers (wait_shape 1), then a step of shape 1",
            creating,
        )


def capture(shape: int, out: Path, paths: Sequence[Callable[[Capture], None]]) -> None:
    # No sweeper: it would start the workflow older_wait_shape terminates before that path starts it.
    env = {"TODO_SERIES_STEP_SHAPE": str(shape), "TODO_SWEEP_INTERVAL_SECONDS": "3600"}
    stack = stack_in_new_dir("todo-histories-", log_level="warn", app_env=env)
    with progress.step(f"Starting a stack with step shape {shape} in {stack.run_dir}"):
        stack.start()
    c = Capture(stack, out, shape)
    try:
        for path in paths:
            with progress.step(f"Shape {shape}: {(path.__doc__ or path.__name__).splitlines()[0]}"):
                path(c)
    finally:
        c.close()
        stack.stop()
        shutil.rmtree(stack.run_dir, ignore_errors=True)


# Paths of shape 2 only, and every path by name (for --only).
NEWER: list[Callable[[Capture], None]] = [steered_dates, reopened]
PATHS = {path.__name__ for path in (step_paths, older_wait_shape, hold_and_end_paths, *NEWER)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="./task histories --", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=CORPUS, help=f"where the files go (default {CORPUS})")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(PATHS),
        help="capture only these paths (repeatable); the corpus keeps the histories older code "
        "wrote, so a new path is added without capturing the others again",
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for shape, paths in ((1, [step_paths, older_wait_shape]), (2, [step_paths, hold_and_end_paths, *NEWER])):
        chosen = [path for path in paths if args.only is None or path.__name__ in args.only]
        if chosen:
            capture(shape, args.out, chosen)
    progress.say(f"==> {len(list(args.out.glob('*.json')))} histories in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
