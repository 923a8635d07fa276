"""`python -m devstack COMMAND`: what the Taskfile's local-stack tasks run."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from devstack import progress
from devstack.paths import default_run_dir
from devstack.ports import StackPorts
from devstack.process import StackError
from devstack.sidecars import GO_MEMLIMIT_PERCENT, sidecar_memory_mib
from devstack.stack import PROFILES, Stack, StackConfig
from devstack.status import STATE_FILE


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def cmd_up(args: argparse.Namespace) -> int:
    state = default_run_dir() / STATE_FILE
    if state.exists():
        pid = json.loads(state.read_text()).get("runner_pid")
        if pid and _alive(pid):
            progress.say(f"The stack already runs (pid {pid}); `./task down` stops it.")
            return 1
    signal.signal(signal.SIGTERM, _raise_stop)
    stack = Stack(
        StackConfig(
            profile=args.profile,
            ports=StackPorts.random() if args.free_ports else StackPorts(),
            tracing=args.tracing,
            api_sidecar_memory_mib=args.api_sidecar_memory,
            api_replicas=args.replicas,
            ha=args.ha,
            audit_replicas=args.audit_replicas,
        )
    )
    progress.say(f"==> Starting the local stack (profile {args.profile}); logs in {stack.logs_dir}")
    try:
        with stack:
            ports = stack.ports
            progress.say(
                "\n".join(
                    [
                        "",
                        "The stack is up:",
                        f"  API          {stack.app_url}   (docs {stack.app_url}/docs)"
                        + (f"; HAProxy over {args.replicas} replicas" if args.replicas > 1 else ""),
                        f"  audit        {stack.audit_url}   (GET /v1/tasks/{{id}}/history; also on the API)",
                        f"  metrics      {stack.app_url}/metrics   daprd {f'http://127.0.0.1:{ports.app_sidecar.metrics}/metrics'}",
                        f"  Dapr HTTP    {stack.dapr_http_url}   (gRPC 127.0.0.1:{ports.app_sidecar.grpc})",
                        f"  PostgreSQL   {stack.database_url}",
                        *([f"  Kafka        {stack.kafka_bootstrap}"] if args.profile == "kafka" else []),
                        f"  SMTP sink    127.0.0.1:{ports.smtp}   (`./task mail` lists what it received)",
                        *(
                            [f"  Zipkin sink  {stack.zipkin_url}   (spans in {stack.traces_dir}/spans.jsonl)"]
                            if args.tracing
                            else []
                        ),
                        f"  logs         {stack.logs_dir}/<process>.log",
                        "",
                        'Try:  curl -H "Authorization: Bearer $(./task token -- alice)" '
                        f"{stack.app_url}/v1/tasks",
                        "Ctrl-C (or `./task down`) stops everything.",
                    ]
                )
            )
            try:
                while True:
                    for name, process in stack.processes.items():
                        if not process.running():
                            progress.say(f"!! {name} exited; see {process.log_path}. Stopping the stack.")
                            return 1
                    time.sleep(1)
            except (KeyboardInterrupt, _Stop):
                progress.say("\n==> Stopping the local stack")
                return 0
    except (KeyboardInterrupt, _Stop):
        progress.say("==> Interrupted while starting: stopped what had started")
        return 0
    except StackError as error:
        progress.say(f"!! The stack did not start: {error}")
        return 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A process that has exited but whose parent has not reaped it yet (a
    # zombie: `up` run by a supervisor or a test, not a shell) is gone too.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): the signal test is all there is
    return state != "Z"


def cmd_down(args: argparse.Namespace) -> int:
    state_file = default_run_dir() / STATE_FILE
    if not state_file.exists():
        progress.say("No stack is running.")
        return 0
    state = json.loads(state_file.read_text())
    runner = state.get("runner_pid")
    if runner and _alive(runner):
        os.kill(runner, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while _alive(runner) and time.monotonic() < deadline:
            time.sleep(0.2)
    # Whatever the runner could not stop (it was killed, say) goes now.
    for name, pid in state.get("processes", {}).items():
        if pid and _alive(pid):
            progress.say(f"    killing leftover {name} (pid {pid})")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    state_file.unlink(missing_ok=True)
    progress.say("The stack is stopped.")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state_file = default_run_dir() / STATE_FILE
    if not state_file.exists():
        print(json.dumps({"profile": None, "runner_pid": None, "processes": []}) if args.json else "stopped")
        return 0
    state = json.loads(state_file.read_text())
    ports: dict[str, dict[str, int]] = state.get("ports", {})
    processes = [
        {"name": name, "pid": pid, "running": _alive(pid), "ports": ports.get(name, {})}
        for name, pid in state["processes"].items()
    ]
    if args.json:
        print(
            json.dumps(
                {"profile": state["profile"], "runner_pid": state["runner_pid"], "processes": processes},
                indent=2,
            )
        )
        return 0
    print(f"profile {state['profile']}, runner pid {state['runner_pid']}")
    for process in processes:
        listening = ", ".join(f"{listener} {port}" for listener, port in process["ports"].items())
        state_text = "running" if process["running"] else "exited"
        print(f"  {process['name']:<16} pid {process['pid']:<8} {state_text:<8} {listening}")
    return 0


def cmd_mail(args: argparse.Namespace) -> int:
    from devstack.smtp_sink import read_mail

    maildir = default_run_dir() / "smtp"
    messages = read_mail(maildir)[-args.last :] if args.last else read_mail(maildir)
    if args.json:
        print(json.dumps(messages, indent=2))
        return 0
    if not messages:
        print(f"No mail yet (the sink of `./task up` writes to {maildir}/mail.jsonl).")
        return 0
    print(f"{'received (UTC)':<24} {'to':<32} subject")
    for message in messages:
        print(f"{message['received_at'][:23]:<24} {', '.join(message['rcpt_tos']):<32} {message['subject']}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from api.auth import issue_token
    from todos.core.settings import DEV_JWT_SECRET, Settings

    settings = Settings(env="dev", jwt_secret=os.environ.get("TODO_JWT_SECRET", DEV_JWT_SECRET))
    print(issue_token(args.user, settings, email=args.email, zoneinfo=args.zoneinfo, ttl_seconds=args.ttl))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser(
        "up",
        help="start the local stack in the foreground (Ctrl-C stops it)",
        description="Start PostgreSQL, placement, scheduler, both roles' sidecars and apps and the "
        "SMTP sink (and Kafka in the kafka profile) on loopback, print their URLs, and stop them "
        "all on Ctrl-C or `./task down`. Data and logs go to .run/ (or TODO_RUN_DIR).",
    )
    up.add_argument(
        "--profile",
        choices=PROFILES,
        default=os.environ.get("PROFILE") or "default",
        help="pub/sub broker: default (Dapr's in-memory one) or kafka (a local KRaft broker); "
        "also PROFILE=kafka (default: %(default)s)",
    )
    up.add_argument(
        "--tracing",
        action="store_true",
        default=os.environ.get("TRACING") == "1",
        help="sidecars trace every request to a local Zipkin sink (devstack.zipkin_sink); also TRACING=1",
    )
    up.add_argument(
        "--api-sidecar-memory",
        type=sidecar_memory_mib,
        metavar="MIB",
        help="the API sidecar's memory budget, as the chart's api.sidecarMemoryLimit: daprd gets "
        f"GOMEMLIMIT at {GO_MEMLIMIT_PERCENT}%% of it (default: no limit)",
    )
    up.add_argument(
        "--replicas",
        type=int,
        default=int(os.environ.get("REPLICAS") or 1),
        metavar="N",
        help="N api processes, each with its own daprd (one app-id: placement spreads the series' "
        "workflows over them), behind HAProxy (installed from Debian when missing) on the API's "
        "port; `./task status` lists each. Also REPLICAS=N (default: %(default)s)",
    )
    up.add_argument(
        "--audit-replicas",
        type=int,
        default=int(os.environ.get("AUDIT_REPLICAS") or 1),
        metavar="M",
        help="M audit processes, each with its own daprd, sharing the topics' partitions through one "
        "consumer group (kafka profile only). Also AUDIT_REPLICAS=M (default: %(default)s)",
    )
    up.add_argument(
        "--ha",
        action="store_true",
        default=os.environ.get("HA") == "1",
        help="three placement servers (one Raft group) and three schedulers (one etcd cluster), as "
        "Dapr's HA mode; the first on the usual ports, the others on free ones. Also HA=1",
    )
    up.add_argument(
        "--free-ports",
        action="store_true",
        help="listen on free ports instead of the fixed ones (8000, 3500, ...), for a second stack "
        "beside another; with TODO_RUN_DIR set to a directory of its own. The URLs are printed",
    )
    up.set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop a stack started by `up`").set_defaults(func=cmd_down)
    status = sub.add_parser("status", help="list the stack's processes, their pids and ports")
    status.add_argument(
        "--json",
        action="store_true",
        help="print {profile, runner_pid, processes: [{name, pid, running, ports}]}",
    )
    status.set_defaults(func=cmd_status)

    mail = sub.add_parser("mail", help="list the email the local SMTP sink received")
    mail.add_argument("--last", type=int, metavar="N", help="only the N most recent messages")
    mail.add_argument("--json", action="store_true", help="full records (text and HTML bodies too) as JSON")
    mail.set_defaults(func=cmd_mail)
    token = sub.add_parser("token", help="print a dev JWT for USER, signed with the dev secret")
    token.add_argument("user")
    token.add_argument("--email", help="the email claim (default USER@example.com)")
    token.add_argument(
        "--zoneinfo", help="the user's IANA time zone: reminder emails show due times in it (default UTC)"
    )
    token.add_argument("--ttl", type=int, default=12 * 3600, help="lifetime in seconds (default 12 h)")
    token.set_defaults(func=cmd_token)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
