"""Processes die while completions are in flight: the app, its sidecar, the
Dapr scheduler. After the restart every completed occurrence has exactly one
next task, every workflow agrees with the database, and reminders that fell
due around the fault are each emailed once, never early.

Reminders promise exactly one email while the app itself survives (a claim
with a lease, marked sent after the SMTP answer); only an app crash between
the SMTP answer and that mark can resend one (same Message-ID), so the app
kill scenario checks steps only.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from devstack.stack import Stack
from tests.chaos.support import Scale, fault_mid_flight

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(1800)]


def kill_and_restart(stack: Stack, process: str) -> Callable[[list[str]], None]:
    def fault(_: list[str]) -> None:
        stack.process(process).kill()
        stack.restart(process, timeout=120)

    return fault


def test_app_sigkill_mid_flight_makes_exactly_one_next_task_each(
    chaos_stack: Stack, scale: Scale, ledger: Callable[[dict[str, object]], None]
) -> None:
    fault_mid_flight(
        chaos_stack, scale, ledger, "app-api", kill_and_restart(chaos_stack, "app-api"), with_reminders=False
    )


def test_daprd_sigkill_mid_flight_makes_exactly_one_next_task_each_and_reminders_fire(
    chaos_stack: Stack, scale: Scale, ledger: Callable[[dict[str, object]], None]
) -> None:
    fault_mid_flight(
        chaos_stack,
        scale,
        ledger,
        "daprd-api",
        kill_and_restart(chaos_stack, "daprd-api"),
        with_reminders=True,
    )


def test_scheduler_restart_mid_flight_makes_exactly_one_next_task_each_and_reminders_fire(
    chaos_stack: Stack, scale: Scale, ledger: Callable[[dict[str, object]], None]
) -> None:
    fault_mid_flight(
        chaos_stack,
        scale,
        ledger,
        "scheduler",
        kill_and_restart(chaos_stack, "scheduler"),
        with_reminders=True,
    )
