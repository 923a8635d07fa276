"""The engine floor: a workflow app that does nothing, in the shape of ours.

`floor_workflow` has the shape of one generation of `recurring_task_workflow`
of step shape 1 for the benchmark's series (no reminders, so no
`schedule_task_reminders`): wait for any of the same external events or a
timer, two activities in a row (the same retry policy), continue as new
keeping unprocessed events. Its activities do no work; the second one, where
our workflow commits the next task, notes the time it ran, which `GET /marks`
returns. `one_activity_floor_workflow` is step shape 2's: the marking activity alone. The benchmark runs it
as app-id `bench-floor` with a sidecar of its own on the same placement,
scheduler and state store as the app it compares with (bench/floor.py).

    DAPR_GRPC_PORT=50001 python -m bench.floor_app --port 8100
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Generator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dapr.ext.workflow import DaprWorkflowContext, WorkflowActivityContext, WorkflowRuntime, when_any

from todos.dapr import sdk_logger_options
from todos.series.contract import EVENTS
from workflows.recurring import ACTIVITY_RETRY
from workflows.waiting import event_waits

WORKFLOW = "bench_floor_workflow"
# The shape of a step-shape-2 generation: one activity, the commit point.
ONE_ACTIVITY_WORKFLOW = "bench_floor_one_activity_workflow"
NOTHING = "bench_floor_nothing"
MARK = "bench_floor_mark"

_marks: dict[str, list[float]] = {}
_lock = threading.Lock()


def floor_workflow(ctx: DaprWorkflowContext, generation: int) -> Generator[Any, Any, None]:
    waits = event_waits(ctx, EVENTS, sentinel_free=True)
    yield when_any([*waits, ctx.create_timer(ctx.current_utc_datetime + timedelta(days=1))])
    yield ctx.call_activity(NOTHING, input=ctx.instance_id, retry_policy=ACTIVITY_RETRY)
    yield ctx.call_activity(MARK, input=ctx.instance_id, retry_policy=ACTIVITY_RETRY)
    ctx.continue_as_new(generation + 1, save_events=True)


def one_activity_floor_workflow(ctx: DaprWorkflowContext, generation: int) -> Generator[Any, Any, None]:
    waits = event_waits(ctx, EVENTS, sentinel_free=True)
    yield when_any([*waits, ctx.create_timer(ctx.current_utc_datetime + timedelta(days=1))])
    yield ctx.call_activity(MARK, input=ctx.instance_id, retry_policy=ACTIVITY_RETRY)
    ctx.continue_as_new(generation + 1, save_events=True)


def nothing(ctx: WorkflowActivityContext, instance: str) -> None:
    return None


def mark(ctx: WorkflowActivityContext, instance: str) -> None:
    now = time.time()
    with _lock:
        _marks.setdefault(instance, []).append(now)


class Handler(BaseHTTPRequestHandler):
    """`GET /healthz` and `GET /marks` ({instance: [epoch seconds, ...]})."""

    def do_GET(self) -> None:
        if self.path == "/healthz":
            body = b"ok"
        elif self.path == "/marks":
            with _lock:
                body = json.dumps(_marks).encode()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.floor_app",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, required=True, help="HTTP port for /healthz and /marks")
    args = parser.parse_args()
    runtime = WorkflowRuntime(logger_options=sdk_logger_options())
    runtime.register_workflow(floor_workflow, name=WORKFLOW)
    runtime.register_workflow(one_activity_floor_workflow, name=ONE_ACTIVITY_WORKFLOW)
    runtime.register_activity(nothing, name=NOTHING)
    runtime.register_activity(mark, name=MARK)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    while True:
        try:
            runtime.start()  # type: ignore[no-untyped-call]
            break
        except Exception:  # noqa: BLE001 - the sidecar is not up yet
            time.sleep(1)
    threading.Event().wait()


if __name__ == "__main__":
    main()
