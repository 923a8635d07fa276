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
from tests.chaos.support import (
    Completer,
    Scale,
    create_series,
    every_reminder_once,
    new_user,
    one_step_each,
    plan_reminders,
    step_counts,
    workflows_at_occurrence,
)
from tests.integration.support import wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(1800)]


def crash_mid_flight(
    stack: Stack,
    scale: Scale,
    ledger: Callable[[dict[str, object]], None],
    process: str,
    *,
    with_reminders: bool,
) -> None:
    user = new_user(process)
    n = scale.completions
    tasks = create_series(stack, user, n)
    series_ids = [t["series_id"] for t in tasks]
    planned = plan_reminders(stack, user, scale.reminders, first_in=5, spread=10) if with_reminders else []

    completer = Completer(stack, user, tasks, timeout=scale.recovery_timeout).start()
    # The fault lands once a fifth of the completions are committed: the
    # rest are still to come, and most of the steps are still to run.
    wait_until(
        lambda: step_counts(stack, series_ids)["completed"] >= max(1, n // 5),
        timeout=scale.recovery_timeout,
        interval=0.1,
        what="a fifth of the completions",
    )
    at_fault = step_counts(stack, series_ids)
    wedges_before = stack.wedged_sidecar_restarts
    stack.process(process).kill()
    stack.restart(process, timeout=120)
    completer.join()

    assert completer.unexpected == [], completer.unexpected[:5]
    assert at_fault["next_tasks"] < n, f"the fault came after every step: {at_fault}"
    steps = one_step_each(stack, series_ids, scale.recovery_timeout)
    in_step = workflows_at_occurrence(stack, series_ids, 2, scale.recovery_timeout)
    counts: dict[str, object] = {
        "completions": n,
        "completed_at_fault": at_fault["completed"],
        "next_at_fault": at_fault["next_tasks"],
        **steps,
        "workflows_at_2": in_step,
        "answers": dict(completer.statuses),
        # daprd 1.18.3 wedged by the crash (dapr/dapr#10408), its sidecar restarted.
        "sidecar_restarts_for_wedge": stack.wedged_sidecar_restarts - wedges_before,
    }
    if planned:
        counts.update(every_reminder_once(stack, user, planned, scale.recovery_timeout))
    ledger(counts)

    assert steps["next_tasks"] == n and steps["missing"] == 0 and steps["extra"] == 0, counts
    assert steps["inconsistent"] == 0, counts
    assert in_step == n
    if planned:
        assert counts["delivered"] == len(planned), counts
        assert counts["duplicated"] == 0 and counts["early"] == 0, counts


def test_app_sigkill_mid_flight_makes_exactly_one_next_task_each(
    chaos_stack: Stack, scale: Scale, ledger: Callable[[dict[str, object]], None]
) -> None:
    crash_mid_flight(chaos_stack, scale, ledger, "app-api", with_reminders=False)


def test_daprd_sigkill_mid_flight_makes_exactly_one_next_task_each_and_reminders_fire(
    chaos_stack: Stack, scale: Scale, ledger: Callable[[dict[str, object]], None]
) -> None:
    crash_mid_flight(chaos_stack, scale, ledger, "daprd-api", with_reminders=True)


def test_scheduler_restart_mid_flight_makes_exactly_one_next_task_each_and_reminders_fire(
    chaos_stack: Stack, scale: Scale, ledger: Callable[[dict[str, object]], None]
) -> None:
    crash_mid_flight(chaos_stack, scale, ledger, "scheduler", with_reminders=True)
