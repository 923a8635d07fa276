"""Fault-injection suite: real stacks, real crashes, exact counts from the DB.

Scale is a pytest option, `--chaos-scale=short|long` (default short):
short runs inside `./task test` (100 completions in flight, 10 s outages);
long is the issue's numbers (1,000 completions, 30 s outages) and runs with
`./task test:chaos`. Stacks are session-scoped and shared by the scenarios
(each scenario works on series of its own user), so a run pays for one
default stack and, if a Kafka scenario is selected, one Kafka stack.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.stack import Stack
from tests.chaos.support import SCALES, Scale
from tests.integration.support import running_stack

# Short timers: retries and reconciliation within seconds.
CHAOS_ENV = {
    "TODO_REMINDER_JOB_RETRY_SECONDS": "2",
    "TODO_OUTBOX_MAX_BACKOFF_SECONDS": "2",
}


@pytest.fixture(scope="session")
def scale(request: pytest.FixtureRequest) -> Scale:
    return SCALES[request.config.getoption("--chaos-scale")]


@pytest.fixture(scope="session")
def chaos_stack() -> Iterator[Stack]:
    """The default-profile stack every process-kill scenario breaks in turn."""
    with running_stack("chaos", **CHAOS_ENV) as running:
        yield running


@pytest.fixture(scope="session")
def kafka_chaos_stack() -> Iterator[Stack]:
    """Two audit replicas share the topics' partitions, as the chart's audit role scales out."""
    with running_stack("chaos-kafka", profile="kafka", audit_replicas=2, **CHAOS_ENV) as running:
        yield running


@pytest.fixture(scope="session")
def distributed_stack() -> Iterator[Stack]:
    """Three api replicas behind HAProxy, three placements (Raft) and three schedulers (etcd)."""
    with running_stack("chaos-distributed", api_replicas=3, ha=True, **CHAOS_ENV) as running:
        yield running
