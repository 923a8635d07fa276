"""Faults of the distributed stack (`--replicas 3 --ha`) while completions are in flight, each
with reminders due around it: one app replica and its sidecar killed and started again later,
every api replica restarted in turn (a rolling restart), the placement leader killed, and the
scheduler's etcd losing one member and then its quorum. After each, every series has exactly one
next occurrence, every reminder is emailed once and never early, and every event is audited once;
the counts include how long the steps paused (the time to recover, as the users saw it)."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bench.load import query
from devstack.roles import API
from devstack.stack import Stack
from tests.chaos.support import Scale, fault_mid_flight, step_counts
from tests.integration.support import placement_leader

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(2400)]

Ledger = Callable[[dict[str, object]], None]

# Past go-etcd-cron's leadership lease (20 s), so the two members left share the dead one's jobs
# and the steps resume before the second member goes.
ONE_MEMBER_DOWN_S = 35.0


def test_one_replica_killed_then_started_again(
    distributed_stack: Stack, scale: Scale, ledger: Ledger
) -> None:
    stack = distributed_stack
    second = replace(API, replica=2)

    def fault(_: list[str]) -> dict[str, object]:
        for name in ("app-api-2", "daprd-api-2"):
            stack.process(name).kill()
        # Placement moves its workflows to the two left while it is down.
        time.sleep(scale.outage_seconds)
        stack.restart_role(second, timeout=120)
        return {"down_s": scale.outage_seconds}

    fault_mid_flight(stack, scale, ledger, "replica-kill", fault, with_reminders=True, audit=True)


def test_a_rolling_restart_of_every_api_replica(
    distributed_stack: Stack, scale: Scale, ledger: Ledger
) -> None:
    stack = distributed_stack

    def fault(_: list[str]) -> None:
        # As a Deployment rolls: one replica at a time, SIGTERM, then started and ready again.
        for replica in (1, 2, 3):
            stack.restart_role(replace(API, replica=replica), timeout=120)

    fault_mid_flight(stack, scale, ledger, "rolling-restart", fault, with_reminders=True, audit=True)


def test_the_placement_leader_killed(distributed_stack: Stack, scale: Scale, ledger: Ledger) -> None:
    stack = distributed_stack

    def fault(_: list[str]) -> dict[str, object]:
        leader = placement_leader(stack)
        stack.process(leader).kill()
        elected = time.monotonic()
        successor = placement_leader(stack)
        assert successor != leader
        electing_s = time.monotonic() - elected
        stack.restart(leader, timeout=120)
        return {"killed": leader, "new_leader": successor, "election_s": round(electing_s, 1)}

    fault_mid_flight(stack, scale, ledger, "placement-leader", fault, with_reminders=True, audit=True)


def longest_pause(stack: Stack, series: list[str], start: datetime, end: datetime) -> float:
    """The longest time between start, the next occurrences created in between, and end."""
    rows = query(
        stack.database_url,
        "SELECT created_at FROM tasks WHERE series_id = ANY(%s) AND occurrence_index = 2"
        " AND created_at > %s AND created_at < %s ORDER BY created_at",
        [uuid.UUID(s) for s in series],
        start,
        end,
    )
    moments = [start, *(created for (created,) in rows), end]
    return round(max((b - a).total_seconds() for a, b in itertools.pairwise(moments)), 1)


def test_the_scheduler_losing_one_member_then_its_quorum(
    distributed_stack: Stack, scale: Scale, ledger: Ledger
) -> None:
    """One of three members gone, the quorum kept: every scheduler pauses its triggers until the
    dead member's leadership lease (20 s in go-etcd-cron) expires and the two left share its jobs,
    then the steps go on. Two gone: etcd commits nothing, so Dapr can neither arm nor trigger a
    job (workflow steps, timers and reminders wait); completions still answer, their events kept
    in the workflows' inboxes. Once a second member is back the steps and reminders catch up."""
    stack = distributed_stack

    def fault(series: list[str]) -> dict[str, object]:
        one_down = datetime.now(UTC)
        stack.process("scheduler-2").kill()
        before = step_counts(stack, series)["next_tasks"]
        time.sleep(ONE_MEMBER_DOWN_S)
        quorum_lost = datetime.now(UTC)
        stack.process("scheduler-3").kill()
        lost = step_counts(stack, series)["next_tasks"]
        time.sleep(scale.outage_seconds)
        during = step_counts(stack, series)["next_tasks"]
        stack.restart("scheduler-3", timeout=120)
        stack.restart("scheduler-2", timeout=120)
        return {
            "one_member_down_s": ONE_MEMBER_DOWN_S,
            "steps_while_one_member_down": lost - before,
            "pause_after_member_lost_s": longest_pause(stack, series, one_down, quorum_lost),
            "quorum_lost_s": scale.outage_seconds,
            "steps_while_quorum_lost": during - lost,
        }

    fault_mid_flight(stack, scale, ledger, "scheduler-quorum", fault, with_reminders=True, audit=True)
