"""Hooks for every tier that starts stacks (integration, chaos)."""

from __future__ import annotations

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
