"""Hooks for every tier that starts stacks (integration, e2e, chaos)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from devstack.stack import Stack


def pytest_addoption(parser: pytest.Parser) -> None:
    # Here, not in tests/chaos/conftest.py: options must come from an initial conftest.
    parser.addoption(
        "--chaos-scale",
        choices=("short", "long"),
        default="short",
        help="load of the fault-injection suite (tests/chaos): short (100 completions in flight, "
        "10 s outages; part of ./task test) or long (1,000 completions, 30 s outages; "
        "./task test:chaos). Default short.",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """On a failure, attach the tail of every stack process's log to the report."""
    from devstack.process import tail

    report = yield
    if report.failed:
        for name, running in getattr(item, "funcargs", {}).items():
            if isinstance(running, Stack):
                for process in running.processes.values():
                    report.sections.append((f"{name}: {process.name} log", tail(process.log_path, 40)))
    return report


LEDGER = pytest.StashKey[dict[str, list[tuple[str, dict[str, object]]]]]()


@pytest.fixture
def ledger(request: pytest.FixtureRequest) -> Callable[[dict[str, object]], None]:
    """Record a test's counts for the summary printed at the end of the run,
    under its tier's heading: the CI log then holds the figures a closing
    note quotes (chaos invariants, schemathesis's operations and cases)."""
    tier = next(
        (name for name in ("chaos", "e2e", "integration") if request.node.get_closest_marker(name)), "test"
    )
    heading = f"{tier} counts" + (
        f" ({request.config.getoption('--chaos-scale')})" if tier == "chaos" else ""
    )
    entries = request.config.stash.setdefault(LEDGER, {}).setdefault(heading, [])

    def record(counts: dict[str, object]) -> None:
        entries.append((request.node.name, counts))

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    for heading, entries in config.stash.get(LEDGER, {}).items():
        terminalreporter.section(heading)
        for name, counts in entries:
            terminalreporter.write_line(f"{name}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
