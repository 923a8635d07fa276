"""Helpers for integration tests (fixtures live in conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devstack.ports import StackPorts
from devstack.stack import Stack, StackConfig

# Short timers so tests see reconciliation within seconds, not minutes.
FAST_TIMERS = {
    "TODO_SERIES_GRACE_SECONDS": "2",
    "TODO_SERIES_RECONCILE_SECONDS": "5",
    "TODO_SWEEP_INTERVAL_SECONDS": "2",
    # SMTP retries within seconds: 0.2 s doubling up to 1 s between attempts.
    "TODO_SMTP_RETRY_INITIAL_SECONDS": "0.2",
    "TODO_SMTP_RETRY_MAX_SECONDS": "1",
}


def start_stack(run_dir: Path, profile: str = "default", **app_env: str) -> Stack:
    stack = Stack(
        StackConfig(
            profile=profile,
            ports=StackPorts.random(),
            run_dir=run_dir,
            app_env={**FAST_TIMERS, **app_env},
        )
    )
    stack.__enter__()
    return stack


def wait_until(
    check: Callable[[], Any], timeout: float = 30, interval: float = 0.2, what: str = "condition"
) -> Any:
    """Poll until `check()` is truthy; return its value or fail saying what."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
