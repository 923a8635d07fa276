"""Fixtures that start the real local stack once per session (devstack: the
same runner as `./task up`), on free ports in a temporary run directory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack.stack import Stack
from tests.integration.support import running_stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The default-profile stack, shared by every test that does not break it."""
    with running_stack("default") as running:
        yield running


@pytest.fixture(scope="session")
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.app_url, timeout=30) as http:
        yield http


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
