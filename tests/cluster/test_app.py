"""Our chart on the live cluster (values-minikube.yaml plus tools/cluster/values-local.yaml):
both roles with an injected daprd (mTLS, sentry-issued identity), the operator's resources in
the sidecar, and a recurring task with a reminder through the Service at 127.0.0.1:18000, over
REST and over MCP as a chatbot calls it: completed, its next occurrence created by the workflow,
the email in the in-cluster sink, its events audited through the in-cluster Kafka."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api.auth import issue_token
from tests.cluster.conftest import Cluster
from tests.integration.mcp_support import call, eventually, mcp_session
from tests.integration.support import wait_until
from todos.core.settings import Settings
from tools.cluster.app import API_URL
from tools.cluster.dependencies import NAMESPACE

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def jwt_secret(cluster: Cluster) -> str:
    secret = cluster.get("secret", "todo-workflows", "-n", NAMESPACE)
    return base64.b64decode(secret["data"]["jwt-secret"]).decode()


@pytest.fixture
def user_headers(jwt_secret: str) -> dict[str, str]:
    user = f"cluster-{uuid.uuid4().hex[:8]}"
    token = issue_token(user, Settings(env="dev", jwt_secret=jwt_secret), email=f"{user}@example.com")
    return {"Authorization": f"Bearer {token}"}


def role_pods(cluster: Cluster, role: str) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/component={role}"
    return cluster.get("pods", "-n", NAMESPACE, "-l", selector)["items"]  # type: ignore[no-any-return]


def in_pod(cluster: Cluster, pod: str, container: str, *command: str) -> str:
    return cluster.kubectl("-n", NAMESPACE, "exec", pod, "-c", container, "--", *command).stdout


@pytest.mark.parametrize("role", ["api", "audit"])
def test_each_role_runs_an_injected_daprd_with_mtls(cluster: Cluster, role: str) -> None:
    pods = role_pods(cluster, role)
    assert pods, f"no {role} pod"
    for pod in pods:
        containers = {c["name"]: c for c in pod["spec"]["containers"]}
        assert set(containers) == {"app", "daprd"}, containers.keys()
        args = containers["daprd"]["args"]
        assert "--enable-mtls" in args, args
        assert any("dapr-sentry.dapr-system.svc" in arg for arg in args), args
        statuses = {s["name"]: s for s in pod["status"]["containerStatuses"]}
        assert all(s["ready"] for s in statuses.values()), statuses


def sidecar_metadata(cluster: Cluster, role: str) -> dict[str, Any]:
    pod = role_pods(cluster, role)[0]["metadata"]["name"]
    fetch = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:3500/v1.0/metadata').read().decode())"
    return json.loads(in_pod(cluster, pod, "app", "python3", "-c", fetch))  # type: ignore[no-any-return]


def test_the_operator_handed_each_sidecar_our_resources(cluster: Cluster) -> None:
    api = sidecar_metadata(cluster, "api")
    components = {c["name"]: c["type"] for c in api["components"]}
    assert (
        components.get("statestore") == "state.postgresql" and components.get("taskpubsub") == "pubsub.kafka"
    )
    assert api.get("actorRuntime", {}).get("runtimeStatus") == "RUNNING", api.get("actorRuntime")
    audit = sidecar_metadata(cluster, "audit")
    topics = {s["topic"] for s in audit["subscriptions"]}
    assert {"task-events", "reminders", "task-updates"} <= topics, topics
    resources = cluster.get(
        "resiliencies.dapr.io,configurations.dapr.io,subscriptions.dapr.io", "-n", NAMESPACE
    )
    assert {item["kind"] for item in resources["items"]} == {"Resiliency", "Configuration", "Subscription"}


def test_a_recurring_task_with_a_reminder_steps_through_the_service(
    cluster: Cluster, user_headers: dict[str, str]
) -> None:
    due = (datetime.now(UTC) + timedelta(seconds=40)).replace(microsecond=0)
    with httpx.Client(base_url=API_URL, headers=user_headers, timeout=30) as api:
        created = api.post(
            "/v1/tasks",
            json={
                "title": "Water the cluster's plants",
                "due_at": due.isoformat(),
                "reminders": [{"before": "PT20S"}],
                "recurrence": {"rule": "daily", "timezone": "UTC"},
            },
        )
        assert created.status_code == 201, created.text
        task = created.json()
        # The reminder first: completing the occurrence would cancel it, as it should.
        sink = cluster.get("pods", "-n", NAMESPACE, "-l", "app=smtp-sink")["items"][0]["metadata"]["name"]

        def reminder_mail() -> list[dict[str, Any]]:
            # Until the first message, the sink has no file.
            read = cluster.kubectl(
                "-n", NAMESPACE, "exec", sink, "--", "cat", "/var/lib/mail/mail.jsonl", check=False
            )
            return [m for m in map(json.loads, read.stdout.splitlines()) if task["title"] in m["subject"]]

        (mail,) = wait_until(reminder_mail, timeout=120, what="the reminder email in the sink")
        received = datetime.fromisoformat(mail["received_at"].replace("Z", "+00:00"))
        assert received >= due - timedelta(seconds=20), "sent early"

        done = api.post(f"/v1/tasks/{task['id']}/complete")
        assert done.status_code == 200, done.text

        def occurrences() -> list[dict[str, Any]]:
            listed = api.get("/v1/tasks", params={"series_id": task["series_id"], "status": "all"})
            return listed.json()["items"] if listed.status_code == 200 else []

        wait_until(lambda: len(occurrences()) == 2, timeout=120, what="the next occurrence")
        assert sorted(t["occurrence_index"] for t in occurrences()) == [1, 2]

        def audited() -> list[str]:
            history = api.get(f"/v1/tasks/{task['id']}/history")
            return [e["event_type"] for e in history.json()["events"]] if history.status_code == 200 else []

        wait_until(
            lambda: {"task.created", "task.completed"} <= set(audited()), timeout=120, what="the audit trail"
        )


async def test_a_chatbot_steps_a_series_over_mcp_through_the_service(
    cluster: Cluster, user_headers: dict[str, str]
) -> None:
    """The official MCP client at the Service's /mcp, the Host header the forwarder keeps
    (127.0.0.1:18000, in the overlay's mcp.allowedHosts)."""
    due = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    async with mcp_session(API_URL, user_headers) as mcp:
        first = await call(
            mcp,
            "add_task",
            title="Feed the cluster's cat",
            due_at=due.isoformat(),
            reminders=[{"before": "PT10M"}],
            recurrence={"rule": "daily", "timezone": "UTC"},
        )
        assert first["occurrence_index"] == 1 and first["reminders"], first
        done = await call(mcp, "complete_task", task_id=first["id"])
        assert done["status"] == "completed", done

        async def second() -> dict[str, Any] | None:
            page = await call(mcp, "list_tasks", series_id=first["series_id"], status="pending")
            return next((t for t in page["items"] if t["occurrence_index"] == 2), None)

        following = await eventually(second, "occurrence #2 over MCP", timeout=120)
    assert datetime.fromisoformat(following["due_at"]) == due + timedelta(days=1)
    assert following["reminders"] == first["reminders"]
