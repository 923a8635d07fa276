"""Look at and steer one workflow instance through the Dapr sidecar, without a
REST token: `./task wf -- status series-<id>` locally, or in a pod
`python -m api.ops_cli status series-<id>` (the sidecar sets DAPR_GRPC_PORT).

The sidecar's gRPC port: --dapr-grpc-port, else $DAPR_GRPC_PORT, else the
port `./task up` wrote to .run/stack.json ($TODO_RUN_DIR/stack.json when set), else
Dapr's default 50001.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from todos.dapr import ENDED_STATUSES, DaprWorkflowGateway, OperatorAction, WorkflowInfo
from todos.series.contract import series_id_of
from todos.series.views import workflow_public

DEFAULT_GRPC_PORT = 50001
# What each action leads to, and how long to wait for the engine to get there.
_EXPECTED: dict[str, tuple[str, ...]] = {
    "pause": ("SUSPENDED",),
    "resume": ("RUNNING", *ENDED_STATUSES),
    "terminate": ENDED_STATUSES,
}
_WAIT_SECONDS = 15.0


class OpsError(Exception):
    """A message for the operator and the exit status that goes with it."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def grpc_port(explicit: int | None, state_file: Path) -> tuple[int, str]:
    """The sidecar's gRPC port and where it came from."""
    if explicit is not None:
        return explicit, "--dapr-grpc-port"
    if os.environ.get("DAPR_GRPC_PORT"):
        return int(os.environ["DAPR_GRPC_PORT"]), "$DAPR_GRPC_PORT"
    if state_file.exists():
        port = json.loads(state_file.read_text()).get("dapr_grpc_port")
        if isinstance(port, int):
            return port, str(state_file)
    return DEFAULT_GRPC_PORT, "Dapr's default"


class Operator:
    def __init__(self, gateway: DaprWorkflowGateway, where: str) -> None:
        self.gateway = gateway
        self.where = where

    def _call(self, what: Callable[[], Any]) -> Any:
        import grpc

        try:
            return what()
        except grpc.RpcError as error:
            code = error.code() if hasattr(error, "code") else None
            if code == grpc.StatusCode.UNAVAILABLE:
                raise OpsError(
                    f"Cannot reach the Dapr sidecar at {self.where}; is the stack up (`./task up`)?", 2
                ) from error
            details = error.details() if hasattr(error, "details") else str(error)
            raise OpsError(f"The sidecar at {self.where} refused: {details}") from error

    def state(self, instance: str) -> WorkflowInfo:
        info = self._call(lambda: self.gateway.describe(instance))
        if info is None:
            raise OpsError(
                f"No workflow instance {instance!r} on the sidecar at {self.where}: unknown, or purged. "
                "Series workflows are named series-<series id>."
            )
        assert isinstance(info, WorkflowInfo)
        return info

    def history(self, instance: str, path: str = "") -> dict[str, Any]:
        """The instance's current generation as recorded, with what it shows."""
        info = self.state(instance)
        events = self._call(lambda: self.gateway.history(instance))
        return {
            "instance_id": instance,
            "workflow": info.name,
            "runtime_status": info.runtime_status,
            "path": path,
            "events": events,
        }

    def act(self, instance: str, action: OperatorAction) -> str:
        before = self.state(instance)
        if action == "purge" and before.runtime_status not in ENDED_STATUSES:
            raise OpsError(
                f"{instance} is {before.runtime_status}; only a finished workflow "
                f"({', '.join(ENDED_STATUSES)}) can be purged. Terminate it first."
            )
        self._call(lambda: self.gateway.operate(instance, action))
        if action == "purge":
            if self._call(lambda: self.gateway.describe(instance)) is not None:
                raise OpsError(f"{instance} is still there after the purge.")
            return f"{instance}: purged (its history and state are gone)."
        status = self._wait_for(instance, _EXPECTED[action])
        message = f"{instance}: {before.runtime_status} -> {status}"
        if action == "terminate" and series_id_of(instance) is not None:
            message += (
                "\nThe series itself stays active in the database, so the app's sweeper starts its "
                "workflow again from the database within minutes; POST /v1/series/{id}/stop ends the "
                "series for its user."
            )
        return message

    def _wait_for(self, instance: str, statuses: tuple[str, ...]) -> str:
        deadline = time.monotonic() + _WAIT_SECONDS
        while True:
            status = self.state(instance).runtime_status
            if status in statuses or time.monotonic() > deadline:
                return status
            time.sleep(0.2)


def operator_view(info: WorkflowInfo) -> dict[str, Any]:
    """The inspect API's shape, plus what only an operator sees: the failure's
    stack trace (the API leaves it out, since it names the app's code)."""
    view = workflow_public(info, series_id_of(info.instance_id)).model_dump(mode="json")
    if info.failure_details is not None:
        view["failure_details"]["stack_trace"] = info.failure_details.stack_trace
    return view


def describe(info: WorkflowInfo) -> str:
    view = operator_view(info)
    failure = view["failure_details"] or {}
    rows = [
        ("instance", view["instance_id"]),
        ("workflow", view["name"]),
        ("status", view["runtime_status"]),
        ("created", view["created_at"]),
        ("updated", view["last_updated_at"]),
        ("custom", view["custom_status"]),
        ("input", view["input"]),
        ("output", view["output"]),
        ("failure", {key: failure[key] for key in ("error_type", "message")} if failure else None),
        # Its own lines, indented under the label, as a terminal shows a traceback.
        ("stack", (failure.get("stack_trace") or "").rstrip().replace("\n", "\n" + " " * 9) or None),
    ]
    return "\n".join(
        f"{label:<9}{value if isinstance(value, str) else json.dumps(value)}"
        for label, value in rows
        if value is not None
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="./task wf --",
        description="Look at or steer one Dapr workflow instance (e.g. series-<series id>) through the "
        "local sidecar. For operators: needs no REST token, only access to the sidecar's gRPC port.",
        epilog=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument("--dapr-grpc-port", type=int, help="the sidecar's gRPC port")
    parser.add_argument("--dapr-host", default="127.0.0.1", help="the sidecar's host (default 127.0.0.1)")
    parser.add_argument(
        "--state-file",
        type=Path,
        default=Path(os.environ.get("TODO_RUN_DIR") or ".run") / "stack.json",
        help="the local stack's state file (default $TODO_RUN_DIR/stack.json, else .run/stack.json)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    helps = {
        "status": "show runtime status, custom status, times, input, output and failure details",
        "pause": "suspend the instance (Dapr SUSPENDED); the series' own pause is POST /v1/series/{id}/pause",
        "resume": "resume a suspended instance",
        "terminate": "stop the instance (Dapr TERMINATED); the sweeper restarts a live series' workflow",
        "purge": "delete a finished instance's history and state",
        "export-history": "write the recorded history of the instance's current generation as JSON "
        "(the replay corpus in tests/data/histories is made of these)",
    }
    for name, text in helps.items():
        command = sub.add_parser(name, help=text, description=text)
        command.add_argument("instance_id", help="workflow instance id, e.g. series-<series id>")
        if name == "status":
            command.add_argument(
                "--json",
                action="store_true",
                help="print JSON (the inspect API's shape, with the failure's stack trace)",
            )
        if name == "export-history":
            command.add_argument("--out", type=Path, help="write to this file (default: standard output)")
            command.add_argument("--path", default="", help="what the history shows, kept in the file")
    args = parser.parse_args(argv)

    port, source = grpc_port(args.dapr_grpc_port, args.state_file)
    gateway = DaprWorkflowGateway(host=args.dapr_host, port=port)
    operator = Operator(gateway, f"{args.dapr_host}:{port} ({source})")
    try:
        if args.command == "status":
            info = operator.state(args.instance_id)
            if args.json:
                print(json.dumps(operator_view(info), indent=2))
            else:
                print(describe(info))
        elif args.command == "export-history":
            text = json.dumps(operator.history(args.instance_id, args.path), indent=1) + "\n"
            if args.out is None:
                print(text, end="")
            else:
                args.out.write_text(text)
                print(f"{args.instance_id}: history written to {args.out}", file=sys.stderr)
        else:
            print(operator.act(args.instance_id, args.command))
    except OpsError as error:
        print(f"wf: {error}", file=sys.stderr)
        return error.status
    finally:
        gateway.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
