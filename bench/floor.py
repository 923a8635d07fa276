"""floor: the engine's own cost for a step of our shape, in the same run.

Starts bench/floor_app.py (a no-op workflow with the shape of one generation of
`recurring_task_workflow`) with a daprd of its own, app-id `bench-floor`, on
the placement, scheduler and state store of the stack the step benchmark used,
drives it exactly as bench/step.py drives ours (the same rate, duration and
burst; the event raised straight on its sidecar), and reports our step's
throughput and latency as ratios of the floor's.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from dapr.ext.workflow import DaprWorkflowClient

from bench import step
from bench.floor_app import ONE_ACTIVITY_WORKFLOW, WORKFLOW
from bench.harness import Context, Figure, Goal, Outcome, measured, wait_stack_idle
from bench.load import closed_loop
from devstack.paths import COMPONENTS_DIR, REPO_ROOT
from devstack.ports import SidecarPorts, free_port
from devstack.process import ManagedProcess
from devstack.stack import Stack
from todos.dapr import sdk_logger_options
from todos.series.contract import TASK_COMPLETED

NAME = "floor"
PROFILE = "default"
APP_ID = "bench-floor"
GOAL_RATIO = 0.5
START_CLIENTS = 16  # as many as scale creates series with


def _resources(stack: Stack) -> Path:
    """The secret store and the workflow state store of the stack, the latter
    scoped to the floor's app-id instead of todo-api."""
    folder = stack.run_dir / "floor-components"
    folder.mkdir(exist_ok=True)
    (folder / "envsecrets.yaml").write_text((COMPONENTS_DIR / "common" / "envsecrets.yaml").read_text())
    store = (COMPONENTS_DIR / "common" / "statestore.yaml").read_text()
    scoped = store.replace("scopes:\n  - todo-api", f"scopes:\n  - {APP_ID}")
    if scoped == store:
        raise SystemExit(
            "components/common/statestore.yaml no longer scopes to todo-api: update bench/floor.py"
        )
    (folder / "statestore.yaml").write_text(scoped)
    return folder


def start_floor(stack: Stack) -> tuple[str, int]:
    """The floor's daprd and app, stopped with the stack; (app URL, sidecar gRPC port)."""
    taken: set[int] = set()
    sidecar = SidecarPorts(*(free_port(taken) for _ in range(5)))
    app_port = free_port(taken)
    stack.launch(
        stack.daprd_process(
            "daprd-floor", APP_ID, sidecar, app_port, (_resources(stack),), app_health_check=False
        )
    )
    url = f"http://127.0.0.1:{app_port}"
    stack.launch(
        ManagedProcess(
            "app-floor",
            [sys.executable, "-m", "bench.floor_app", "--port", str(app_port)],
            env={**stack.app_env(), "DAPR_GRPC_PORT": str(sidecar.grpc), "DAPR_HTTP_PORT": str(sidecar.http)},
            cwd=REPO_ROOT,
            log_path=stack.logs_dir / "app-floor.log",
            ready=lambda: httpx.get(f"{url}/healthz", timeout=2).is_success,
            describe=url,
        )
    )
    return url, sidecar.grpc


def _wait_running(client: Any, instances: Sequence[str], timeout: float) -> None:
    """Every instance ran its first generation up to the wait."""
    deadline = time.monotonic() + timeout

    def running(instance: str) -> bool:
        state = client.get_workflow_state(instance, fetch_payloads=False)
        return state is not None and state.runtime_status.name == "RUNNING"

    pending = list(instances)
    with ThreadPoolExecutor(8) as pool:
        while pending:
            pending = [i for i, ok in zip(pending, pool.map(running, pending), strict=True) if not ok]
            if pending and time.monotonic() > deadline:
                raise SystemExit(f"{len(pending)} floor workflows not running after {timeout:.0f}s")
            if pending:
                time.sleep(0.5)


def _marks(url: str) -> dict[str, float]:
    """{instance: when its first step reached the commit point}."""
    marks: dict[str, list[float]] = httpx.get(f"{url}/marks", timeout=30).json()
    return {instance: times[0] for instance, times in marks.items()}


def _committed(url: str, keys: Sequence[str], timeout: float) -> dict[str, float]:
    wanted = set(keys)
    deadline = time.monotonic() + timeout
    while True:
        done = {k: v for k, v in _marks(url).items() if k in wanted}
        if len(done) == len(wanted) or time.monotonic() > deadline:
            return done
        time.sleep(0.5)


@dataclass(frozen=True)
class Shape:
    """One floor workflow, measured under its own figure names."""

    workflow: str
    label: str  # the figures' prefix
    what: str


SHAPES = (
    Shape(WORKFLOW, NAME, "two activities, as a step of shape 1"),
    Shape(ONE_ACTIVITY_WORKFLOW, "one-activity floor", "one activity, as a step of shape 2"),
)


def _measure(
    ctx: Context, stack: Stack, url: str, client: DaprWorkflowClient, shape: Shape
) -> tuple[step.StepRun, Figure]:
    """The steps of one floor shape, driven as bench/step.py drives ours, and its workflow starts per s."""
    rate, seconds, burst = step.sizes(ctx)
    count = int(rate * seconds)
    prefix = f"floor-{uuid.uuid4().hex[:6]}"
    instances = [f"{prefix}-{i}" for i in range(count + burst)]
    start_seconds = closed_loop(
        f"starting {shape.label} workflows",
        len(instances),
        START_CLIENTS,
        lambda i: client.schedule_new_workflow(shape.workflow, input=0, instance_id=instances[i]),
    )
    _wait_running(client, instances, timeout=600)
    wait_stack_idle(stack, timeout=600)

    def send(instance: str) -> tuple[bool, str]:
        try:
            client.raise_workflow_event(instance, TASK_COMPLETED, data={})
        except Exception as error:  # noqa: BLE001 - counted as a failed step
            return False, repr(error)
        return True, ""

    result = step.measure_steps(
        shape.label,
        instances[:count],
        instances[count:],
        rate,
        send,
        lambda keys: _committed(url, keys, timeout=300),
        lambda: measured(stack),
    )
    starts = Figure(
        f"{shape.label} workflows started per s",
        len(instances) / start_seconds,
        "/s",
        {"workflows": len(instances), "clients": START_CLIENTS, "load": "closed loop"},
        note="the engine's own ceiling for series creation (scale)",
    )
    return result, starts


def _ratios(ctx: Context, shape: Shape, result: step.StepRun, figures: list[Figure]) -> list[Figure]:
    """Our step's throughput and p95 as ratios of this floor's, when `step` ran before."""
    label = "floor" if shape.label == NAME else shape.label
    ours = ctx.results.get(step.NAME)
    if ours is None:
        note = "run together with `step` for the ratios"
        return [Figure(f"throughput ratio step/{label}", None, "ratio", {}, Goal(">=", GOAL_RATIO), note)]
    mine = {f.name: f for f in ours.figures}
    theirs = {f.name: f for f in figures}
    conditions = {"step": mine["step max throughput"].conditions, "floor": result.burst_conditions}
    return [
        Figure(
            f"throughput ratio step/{label}",
            _ratio(mine["step max throughput"].value, result.burst_steps_per_s),
            "ratio",
            conditions,
            Goal(">=", GOAL_RATIO),
            note=f"the floor: {shape.what}",
        ),
        Figure(
            f"p95 latency ratio step/{label}",
            _ratio(mine["step p95"].value, theirs[f"{shape.label} p95"].value),
            "ratio",
            result.conditions,
            note="how many times the floor's step latency ours takes",
        ),
    ]


def run(ctx: Context) -> Outcome:
    stack = ctx.stacks.get(PROFILE)
    url, grpc_port = start_floor(stack)
    client = DaprWorkflowClient(host="127.0.0.1", port=str(grpc_port), logger_options=sdk_logger_options())
    figures: list[Figure] = []
    details: dict[str, Any] = {}
    try:
        for shape in SHAPES:
            result, starts = _measure(ctx, stack, url, client, shape)
            measured_figures = [*step.figures(shape.label, result, None), starts]
            figures += [*measured_figures, *_ratios(ctx, shape, result, measured_figures)]
            details[shape.label] = {
                "cpu_during_fixed_rate": result.facts,
                "latencies_s_in_send_order": result.latencies,
            }
    finally:
        client.close()  # type: ignore[no-untyped-call]
    return Outcome(figures, details)


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b
