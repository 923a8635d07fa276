"""Must show of issue 9: on the real stack, every metric a Grafana dashboard
or an alert rule refers to exists on the app's or daprd's /metrics (Kafka Lag
Exporter's excepted, see grafana/README.md), after the stack has done the
things the metrics count; the app's JSON log lines carry the request's trace
id, user and task; and the sidecars' spans reach Zipkin with the trace ids the
app logged for the calls daprd made into it."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack.stack import Stack
from devstack.zipkin_sink import read_spans
from tests.helpers import auth
from tests.integration.support import create_recurring_task, running_stack, wait_until
from tests.monitoring import KAFKA_EXPORTER_METRICS, referenced_metrics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

USER = "observer"
# What each Prometheus type's samples are called, beside the family name.
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created")}
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # The kafka profile: the dashboards show the chart's deployment, which always
    # has Kafka, and some panels count what only its bulk deliveries record.
    with running_stack("observability", "kafka", tracing=True, TODO_LOG_FORMAT="json") as running:
        yield running


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.app_url, timeout=30) as http:
        yield http


def endpoints(stack: Stack) -> dict[str, str]:
    ports = stack.ports
    return {
        "app (api)": f"{stack.app_url}/metrics",
        "app (audit)": f"{stack.audit_url}/metrics",
        "daprd (api)": f"http://127.0.0.1:{ports.app_sidecar.metrics}/metrics",
        "daprd (audit)": f"http://127.0.0.1:{ports.audit_sidecar.metrics}/metrics",
    }


def scrape(url: str) -> list[Any]:
    """Metric families with their samples' labels."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, f"{url}: {response.status_code}"
    return list(text_string_to_metric_families(response.text))


def exposed(stack: Stack) -> tuple[set[str], dict[str, float]]:
    """(every name a query can select, sample totals by name) over all four endpoints.

    Read off the exposition text as Prometheus stores it (prometheus_client's parser
    renames counters without a `_total` suffix, as daprd's are). A labelled metric
    nobody has used yet is declared (HELP/TYPE) without samples; its names count as
    existing, as Prometheus will have them once it is used."""
    names: set[str] = set()
    totals: dict[str, float] = {}
    for url in endpoints(stack).values():
        response = httpx.get(url, timeout=10)
        assert response.status_code == 200, f"{url}: {response.status_code}"
        for line in response.text.splitlines():
            if line.startswith("# TYPE "):
                _, _, family, kind = line.split(maxsplit=3)
                names.add(family)
                names.update(family + suffix for suffix in SUFFIXES.get(kind, ()))
            elif line and not line.startswith("#"):
                match = METRIC_NAME.match(line)
                assert match, f"{url}: unreadable line {line!r}"
                names.add(match.group())
                totals[match.group()] = totals.get(match.group(), 0.0) + float(line.rsplit(maxsplit=1)[-1])
    return names, totals


def exercise(client: httpx.Client, stack: Stack) -> dict[str, str]:
    """Create and complete a recurring task (a next occurrence), stop its series (a
    workflow execution ends), and send a reminder (a job fires, an email goes out);
    every change is an event the audit role records. Returns ids for the log check."""
    due = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0).isoformat()
    first = create_recurring_task(
        client, USER, title="water plants", due_at=due, rule="daily", timezone="UTC"
    )
    series_id = first["series_id"]
    trace_id = uuid.uuid4().hex
    completed = client.post(
        f"/v1/tasks/{first['id']}/complete",
        headers={**auth(USER), "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"},
    )
    assert completed.status_code == 200, completed.text

    def next_occurrence() -> bool:
        page = client.get("/v1/tasks", params={"series_id": series_id}, headers=auth(USER)).json()
        return len(page["items"]) >= 2

    wait_until(next_occurrence, timeout=120, what="the series' next occurrence")
    stopped = client.post(f"/v1/series/{series_id}/stop", headers=auth(USER))
    assert stopped.status_code == 200, stopped.text

    at = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    reminded = client.post(
        "/v1/tasks", json={"title": "call the plumber", "reminders": [{"at": at}]}, headers=auth(USER)
    )
    assert reminded.status_code == 201, reminded.text
    task_id = reminded.json()["id"]

    def reminder_sent() -> bool:
        task = client.get(f"/v1/tasks/{task_id}", headers=auth(USER)).json()
        return bool(task["reminder_status"]) and task["reminder_status"][0]["status"] == "sent"

    wait_until(reminder_sent, timeout=120, what="the reminder email")
    return {"trace_id": trace_id, "task_id": first["id"]}


@pytest.fixture(scope="module")
def exercised(client: httpx.Client, stack: Stack) -> dict[str, str]:
    return exercise(client, stack)


def test_every_metric_of_every_dashboard_and_alert_is_exposed(
    stack: Stack, exercised: dict[str, str]
) -> None:
    wanted = referenced_metrics()

    def missing() -> dict[str, set[str]]:
        names, _ = exposed(stack)
        return {m: uses for m, uses in wanted.items() if m not in names and m not in KAFKA_EXPORTER_METRICS}

    # daprd records a workflow execution when the stopped series' workflow returns:
    # give it time rather than racing it.
    try:
        wait_until(lambda: not missing(), timeout=90, interval=2, what="every referenced metric")
    except pytest.fail.Exception:
        pytest.fail(
            "missing from the app's and daprd's /metrics:\n"
            + "\n".join(
                f"  {metric}  (used by {', '.join(sorted(uses))})"
                for metric, uses in sorted(missing().items())
            )
        )


def test_the_exercised_metrics_have_samples(stack: Stack, exercised: dict[str, str]) -> None:
    _, totals = exposed(stack)
    for counted in (
        "todo_occurrences_created_total",
        "todo_tasks_completed_total",
        "todo_completion_to_next_seconds_count",
        "todo_next_occurrence_seconds_count",
        "todo_reminder_lateness_seconds_count",
        "todo_reminders_sent_total",
        "todo_events_published_total",
        "todo_audit_events_total",
        "dapr_runtime_workflow_execution_count",
        "dapr_component_job_latencies_count",
    ):
        assert totals.get(counted, 0) >= 1, f"{counted} counted nothing"
    assert totals["todo_tasks_created_total"] >= 2
    active = [
        sample
        for family in scrape(endpoints(stack)["app (api)"])
        if family.name == "todo_series_active"
        for sample in family.samples
    ]
    assert {s.labels["status"] for s in active} == {"active", "paused"}


def test_http_metrics_label_route_templates_not_paths(stack: Stack, exercised: dict[str, str]) -> None:
    routes = {
        sample.labels["route"]
        for family in scrape(endpoints(stack)["app (api)"])
        if family.name == "todo_http_request_seconds"
        for sample in family.samples
    }
    assert {"/v1/tasks", "/v1/tasks/{task_id}/complete", "/v1/series/{series_id}/stop"} <= routes
    assert not [route for route in routes if exercised["task_id"] in route]


def test_json_log_lines_carry_trace_user_and_task(stack: Stack, exercised: dict[str, str]) -> None:
    log = stack.process("app-api").log_path
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines, f"no JSON lines in {log}"
    traced = [line for line in lines if line.get("trace_id") == exercised["trace_id"]]
    assert traced, "no line carries the traceparent's trace id"
    completion = traced[-1]
    assert completion["user_id"] == USER
    assert completion["task_id"] == exercised["task_id"]
    assert completion["route"] == "/v1/tasks/{task_id}/complete"
    assert completion["status"] == 200
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)


def json_lines(stack: Stack, process: str) -> list[dict[str, Any]]:
    text = stack.process(process).log_path.read_text()
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_sidecars_send_spans_to_zipkin_with_the_trace_ids_the_app_logs(
    stack: Stack, exercised: dict[str, str]
) -> None:
    def services() -> set[str]:
        return {(span.get("localEndpoint") or {}).get("serviceName") for span in read_spans(stack.traces_dir)}

    wait_until(lambda: {"todo-api", "todo-audit"} <= services(), timeout=60, what="spans from both sidecars")
    # Deliveries daprd made into the audit app: their traceparent is in the app's access lines.
    delivered = {
        line["trace_id"]
        for line in json_lines(stack, "app-audit")
        if line.get("route") == "/events/{topic}" and "trace_id" in line
    }
    assert delivered, "the audit app logged no trace id for the events daprd delivered"

    def traced() -> set[str]:
        return delivered & {span["traceId"] for span in read_spans(stack.traces_dir)}

    assert wait_until(traced, timeout=60, what="a delivery's trace id among the Zipkin spans")
