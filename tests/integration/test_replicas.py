"""Two api replicas, each with its own daprd under one app-id, behind HAProxy
on one URL: requests and series workflows are spread over both, and when one
replica and its sidecar are killed (-9) every series still steps exactly
once, its workflows moved by placement to the one left."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack.roles import API
from devstack.stack import Stack
from tests.integration.support import daily_series, running_stack, step_all
from tests.integration.test_series import tomorrow_at

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

SERIES = 24


@pytest.fixture(scope="module")
def replicated() -> Iterator[Stack]:
    with running_stack("replicas", api_replicas=2) as stack:
        yield stack


def counter(stack: Stack, replica: int, name: str) -> float:
    """A metric's total on one replica; of the HTTP ones, the API's routes only (not the
    balancer's health checks)."""
    port = stack.app_port_of(replace(API, replica=replica))
    families = text_string_to_metric_families(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
    return sum(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == name and sample.labels.get("route", "/v1").startswith("/v1")
    )


def test_two_replicas_share_the_series_and_one_killed_loses_no_step(replicated: Stack) -> None:
    with httpx.Client(base_url=replicated.app_url, timeout=30) as client:
        series = daily_series(client, "replica", SERIES, tomorrow_at(9))
        step_all(client, series, 2)
        served = [counter(replicated, n, "todo_http_request_seconds_count") for n in (1, 2)]
        stepped = [counter(replicated, n, "todo_occurrences_created_total") for n in (1, 2)]
        # Round robin spreads the requests; placement spreads the workflows (and their activities).
        assert min(served) > 0 and min(stepped) > 0 and sum(stepped) == SERIES, (served, stepped)

        for name in ("app-api-2", "daprd-api-2"):
            replicated.process(name).kill()
        step_all(client, series, 3)
        after = counter(replicated, 1, "todo_occurrences_created_total")
        # Replica 2 is gone: replica 1 created every occurrence #3, each once (the listing above).
        assert after - stepped[0] == SERIES

        replicated.restart_role(replace(API, replica=2))
        step_all(client, series, 4)
    # Back behind the balancer, it takes requests (and workflows) again.
    assert counter(replicated, 2, "todo_http_request_seconds_count") > 0
