"""Faults of the distributed stack (`--replicas 3 --ha`) while completions are in flight, each
with reminders due around it: one app replica and its sidecar killed and started again later,
every api replica restarted in turn (a rolling restart), the placement leader killed, one member
of the scheduler's etcd killed, and two (its quorum lost). After each, every series has exactly
one next occurrence, every reminder is emailed once and never early, and every event is audited
once; the counts include how long the steps paused (the time to recover, as the users saw it)."""

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
# and the steps resume before it comes back.
ONE_MEMBER_DOWN_S = 30.0


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
    """The longest time between start and the next occurrences created after it, up to end: to
    end itself only when none came (once every step is done, the quiet after is no pause)."""
    rows = query(
        stack.database_url,
        "SELECT created_at FROM tasks WHERE series_id = ANY(%s) AND occurrence_index = 2"
        " AND created_at > %s AND created_at < %s ORDER BY created_at",
        [uuid.UUID(s) for s in series],
        start,
        end,
    )
    moments = [start, *(created for (created,) in rows)] if rows else [start, end]
    return round(max((b - a).total_seconds() for a, b in itertools.pairwise(moments)), 1)


def test_one_scheduler_member_killed(distributed_stack: Stack, scale: Scale, ledger: Ledger) -> None:
    """One of three etcd members gone, the quorum kept: the schedulers left pause their triggers
    until the dead member's leadership lease (20 s in go-etcd-cron) expires or the two agree on
    sharing its jobs, then the steps go on; it is started again later. At 1,000 completions a
    few workflows never hear their step's result (the job carrying it goes with the member):
    the sweeper replaces them once they lag the database past its grace."""
    stack = distributed_stack

    def fault(series: list[str]) -> dict[str, object]:
        killed = datetime.now(UTC)
        stack.process("scheduler-2").kill()
        before = step_counts(stack, series)["next_tasks"]
        time.sleep(ONE_MEMBER_DOWN_S)
        during = step_counts(stack, series)["next_tasks"]
        back = datetime.now(UTC)
        stack.restart("scheduler-2", timeout=120)
        return {
            "member_down_s": ONE_MEMBER_DOWN_S,
            "steps_while_member_down": during - before,
            "pause_after_member_lost_s": longest_pause(stack, series, killed, back),
        }

    fault_mid_flight(stack, scale, ledger, "scheduler-member", fault, with_reminders=True, audit=True)


def test_the_scheduler_losing_its_quorum(distributed_stack: Stack, scale: Scale, ledger: Ledger) -> None:
    """Two of three etcd members gone: etcd commits nothing, so Dapr can neither arm nor trigger a
    job (workflow steps, timers and reminders wait; only a step whose activity already ran
    commits); completions still answer, their events kept in the workflows' inboxes. One member
    back restores the quorum and the steps and reminders catch up; the other follows."""
    stack = distributed_stack

    def fault(series: list[str]) -> dict[str, object]:
        for name in ("scheduler-2", "scheduler-3"):
            stack.process(name).kill()
        lost = step_counts(stack, series)["next_tasks"]
        time.sleep(scale.outage_seconds)
        during = step_counts(stack, series)["next_tasks"]
        stack.restart("scheduler-3", timeout=120)
        stack.restart("scheduler-2", timeout=120)
        # The longest step gap and the last step after the fault (in the counts) show the recovery.
        return {"quorum_lost_s": scale.outage_seconds, "steps_while_quorum_lost": during - lost}

    fault_mid_flight(stack, scale, ledger, "scheduler-quorum", fault, with_reminders=True, audit=True)
