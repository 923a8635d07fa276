"""`python -m bench` (`./task bench`): the benchmark suite.

Starts the local stack itself (devstack, free ports, a temporary directory;
the kafka profile only for `events`), shares one stack between the
benchmarks that can share it, shows a progress line per benchmark on stderr,
and writes every figure with its conditions, its goal and the machine's
facts to bench/results/latest.json, the table to bench/results/latest.md,
and, after a full run of every benchmark, into docs/performance.md (between
its markers) with a copy of the JSON in bench/results/docs-run.json.

    ./task bench                       # everything (long: scale creates 100,000 series)
    ./task bench -- step floor         # some
    ./task bench -- scale --series 10000
    ./task bench -- footprint          # what an idle series holds in each store, at 10,000 and 100,000
    ./task bench -- replicas           # steps with 1, 2 and 3 api replicas; a dead one's workflows moved
    ./task bench -- --quick recurrence # seconds: the smoke test's run
    ./task bench -- step floor account --profile  # the step, its floor and its cost account
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from bench import account, create, events, floor, footprint, recurrence, reminders, replicas, scale, step
from bench.harness import DEFAULT_USERS, Context, Stacks, loadavg, machine
from bench.report import table, write_docs, write_json
from devstack import progress
from devstack.paths import REPO_ROOT
from devstack.sidecars import GO_MEMLIMIT_PERCENT, sidecar_memory_mib

# Run order: the default-profile ones share a stack (scale last: it leaves
# 100,000 series behind), footprint on a fresh one of its own, replicas on three of its own (one
# per replica count), then the kafka one.
BENCHMARKS: dict[str, ModuleType] = {
    m.NAME: m
    for m in (recurrence, create, step, floor, account, reminders, scale, footprint, replicas, events)
}


def summary(module: ModuleType) -> str:
    first = (module.__doc__ or "").strip().splitlines()[0]
    return first.removeprefix(f"{module.NAME}: ")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help="benchmarks to run (default: all; see --list)"
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short conditions (seconds, small counts): a smoke run, not figures",
    )
    parser.add_argument(
        "--series",
        type=int,
        metavar="N",
        help=f"series the scale benchmark creates (default {scale.DEFAULT_SERIES:,})",
    )
    parser.add_argument(
        "--scale-minutes",
        type=float,
        metavar="M",
        help="scale stops creating series after M minutes; its figures name the count reached",
    )
    parser.add_argument(
        "--users",
        type=int,
        default=DEFAULT_USERS,
        metavar="N",
        help="how many users the requests of create, step, scale and reminders come from, in turn "
        f"(default {DEFAULT_USERS}); one user's events are one ordered chain for the outbox relay",
    )
    parser.add_argument(
        "--api-sidecar-memory",
        type=sidecar_memory_mib,
        default=scale.SIDECAR_MEMORY_MIB,
        metavar="MIB",
        help="the API sidecar's memory budget, as the chart's api.sidecarMemoryLimit: daprd gets "
        f"GOMEMLIMIT at {GO_MEMLIMIT_PERCENT}%% of it (default {scale.SIDECAR_MEMORY_MIB}, sized for "
        "the scale benchmark's series)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="account also samples the api app with py-spy during its steps "
        "(bench/results/account-profile.txt; the busiest frames in the details)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT / "bench" / "results",
        help="where latest.json/.md go (default bench/results)",
    )
    parser.add_argument(
        "--docs",
        type=Path,
        default=REPO_ROOT / "docs" / "performance.md",
        help="the page a full run updates (default docs/performance.md)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the stacks' data and logs (printed at the end)"
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if args.series is not None and args.series < 1:
        parser.error("--series must be at least 1")
    if args.users < 1:
        parser.error("--users must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for name, module in BENCHMARKS.items():
            where = f"{module.PROFILE} stack" if module.PROFILE else "no stack"
            print(f"{name:<11} {summary(module)} ({where})")
        return 0
    names = args.names or list(BENCHMARKS)
    names = [n for n in BENCHMARKS if n in names]  # the run order, whatever the command line's
    full = not args.quick and len(names) == len(BENCHMARKS)
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick (smoke conditions)"
        if args.quick
        else ("full" if full else f"partial: {' '.join(names)}"),
        "machine": machine(),
        "load_start": loadavg(),
        "options": {
            "quick": args.quick,
            "series": args.series,
            "scale_minutes": args.scale_minutes,
            "users": args.users,
            "profile": args.profile,
            "api_sidecar_memory_mib": args.api_sidecar_memory,
        },
        "benchmarks": {},
    }
    ctx = Context(
        stacks=Stacks(keep=args.keep, api_sidecar_memory_mib=args.api_sidecar_memory),
        quick=args.quick,
        series=args.series,
        scale_minutes=args.scale_minutes,
        users=args.users,
        profile=args.profile,
    )
    failed = []
    try:
        for position, name in enumerate(names, 1):
            module = BENCHMARKS[name]
            entry: dict[str, Any] = {"load_before": loadavg()}
            started = time.monotonic()
            with progress.step(f"[{position}/{len(names)}] {name}: {summary(module)}"):
                try:
                    outcome = module.run(ctx)
                except (Exception, SystemExit) as error:  # noqa: BLE001 - one failure must not lose the others
                    traceback.print_exc()
                    entry["error"] = f"{type(error).__name__}: {error}"
                    failed.append(name)
                else:
                    ctx.results[name] = outcome
                    entry["figures"] = [f.to_json() for f in outcome.figures]
                    entry["details"] = outcome.details
            entry |= {"seconds": round(time.monotonic() - started, 1), "load_after": loadavg()}
            results["benchmarks"][name] = entry
            write_json(results, args.out / "latest.json")  # partial results survive an interrupted run
    finally:
        ctx.stacks.close()
    results |= {"finished_at": datetime.now(UTC).isoformat(timespec="seconds"), "load_end": loadavg()}
    write_json(results, args.out / "latest.json")
    (args.out / "latest.md").write_text(table(results) + "\n")
    print(table(results))
    progress.say(f"==> Results in {args.out / 'latest.json'} and {args.out / 'latest.md'}")
    if full and not failed:
        write_docs(results, args.docs)
        shutil.copyfile(args.out / "latest.json", args.out / "docs-run.json")
        progress.say(f"==> Updated {args.docs} (and {args.out / 'docs-run.json'})")
    else:
        progress.say(f"==> {args.docs} left as it is: only a full run without failures updates it")
    if failed:
        progress.say(f"!!! failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
