"""Fixtures that start the real local stack once per session (devstack: the
same runner as `./task up`), on free ports in a temporary run directory."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from devstack.stack import Stack
from tests.integration.support import running_stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The default-profile stack, shared by every test that does not break it."""
    # A running workflow behind the database is replaced after 5 s instead of 60.
    with running_stack("default", TODO_SWEEP_LAG_GRACE_SECONDS="5") as running:
        yield running


@pytest.fixture(scope="session")
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.app_url, timeout=30) as http:
        yield http
