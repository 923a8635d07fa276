"""GET /v1/workflows/{instance_id} and the operator command (`./task wf`),
against the real workflow engine: what the owner sees of a running series,
that nobody else sees anything, how a purged workflow shows, and that a live
series' workflow terminated by hand comes back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import build_services
from devstack.paths import REPO_ROOT
from devstack.stack import Stack
from tests.helpers import auth
from tests.integration.support import create_recurring_task, sweeper_repairs, wait_until
from tests.service.conftest import FakeJobs, FakeWorkflows
from todos.core.settings import Settings
from todos.core.users import User
from todos.dapr import DaprWorkflowGateway
from todos.reminders.mailer import Mailer
from todos.series.contract import SeriesState
from workflows.recurring import Create, next_step

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def new_user() -> str:
    return f"wf-{uuid.uuid4().hex[:8]}"


def create_series(client: httpx.Client, user: str) -> dict[str, Any]:
    return create_recurring_task(
        client,
        user,
        title="Weekly review",
        due_at="2030-01-04T16:00:00+01:00",
        rule="FREQ=WEEKLY;BYDAY=FR",
        timezone="Europe/Paris",
    )


def occurrences(client: httpx.Client, user: str, series_id: str) -> list[dict[str, Any]]:
    response = client.get("/v1/tasks", params={"series_id": series_id}, headers=auth(user))
    assert response.status_code == 200, response.text
    return sorted(response.json()["items"], key=lambda task: task["occurrence_index"])


def inspect(client: httpx.Client, user: str, instance: str) -> httpx.Response:
    return client.get(f"/v1/workflows/{instance}", headers=auth(user))


def status_becomes(client: httpx.Client, user: str, instance: str, status: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        response = inspect(client, user, instance)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body if body["runtime_status"] == status else None

    return wait_until(check, timeout=60, what=f"{instance} to be {status}")  # type: ignore[no-any-return]


def wf(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`./task wf -- ARGS` without Task in between."""
    return subprocess.run(
        [sys.executable, "-m", "api.ops_cli", *args],
        cwd=REPO_ROOT,
        env={k: v for k, v in {**os.environ, **(env or {})}.items() if k != "DAPR_GRPC_PORT"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_owner_sees_status_custom_status_times_and_input(client: httpx.Client) -> None:
    user = new_user()
    task = create_series(client, user)
    instance = f"series-{task['series_id']}"

    def running_with_status() -> dict[str, Any] | None:
        body: dict[str, Any] = inspect(client, user, instance).json()
        return body if body["runtime_status"] == "RUNNING" and body["custom_status"] else None

    body = wait_until(running_with_status, timeout=60, what="the series workflow to report its status")

    assert body["instance_id"] == instance and body["series_id"] == task["series_id"]
    assert body["name"] == "recurring_task_workflow"
    assert body["custom_status"] == {
        "current_task_id": task["id"],
        "occurrence_index": 1,
        "next_due_at": "2030-01-04T15:00:00Z",
        "paused": False,
    }
    assert body["created_at"].endswith("Z") and body["last_updated_at"].endswith("Z")
    assert body["created_at"] <= body["last_updated_at"]
    assert body["input"]["series_id"] == task["series_id"] and body["input"]["user_id"] == user
    assert body["input"]["rule"] == "FREQ=WEEKLY;BYDAY=FR"
    assert body["output"] is None and body["failure_details"] is None


def test_nobody_else_sees_a_workflow(client: httpx.Client) -> None:
    owner = new_user()
    task = create_series(client, owner)
    instance = f"series-{task['series_id']}"
    status_becomes(client, owner, instance, "RUNNING")

    for user, target in [
        (new_user(), instance),  # another user's
        (owner, f"series-{uuid.uuid4()}"),  # unknown
        (owner, "not-a-series-workflow"),
    ]:
        response = inspect(client, user, target)
        assert response.status_code == 404, target
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "NOT_FOUND"
        assert "series-<series id>" in response.json()["detail"]
    anonymous = client.get(f"/v1/workflows/{instance}")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "UNAUTHORIZED"
    assert inspect(client, owner, "series-" + "x" * 200).status_code == 422


def test_suspended_resumed_then_purged_through_the_operator_command(
    stack: Stack, client: httpx.Client
) -> None:
    user = new_user()
    task = create_series(client, user)
    instance = f"series-{task['series_id']}"
    status_becomes(client, user, instance, "RUNNING")
    port = ["--dapr-grpc-port", str(stack.ports.app_sidecar.grpc)]

    refused = wf(*port, "purge", instance)
    assert refused.returncode == 1 and "only a finished workflow" in refused.stderr

    paused = wf(*port, "pause", instance)
    assert paused.returncode == 0, paused.stderr
    assert f"{instance}: RUNNING -> SUSPENDED" in paused.stdout
    status_becomes(client, user, instance, "SUSPENDED")
    resumed = wf(*port, "resume", instance)
    assert resumed.returncode == 0 and "SUSPENDED -> RUNNING" in resumed.stdout, resumed.stderr

    stopped = client.post(f"/v1/series/{task['series_id']}/stop", headers=auth(user))
    assert stopped.status_code == 200, stopped.text
    status_becomes(client, user, instance, "COMPLETED")

    # Found through the state file `./task up` writes, as an operator would.
    state = json.loads((stack.run_dir / "stack.json").read_text())
    assert state["dapr_grpc_port"] == stack.ports.app_sidecar.grpc
    shown = wf("--state-file", str(stack.run_dir / "stack.json"), "status", "--json", instance)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["runtime_status"] == "COMPLETED"

    purged = wf(*port, "purge", instance)
    assert purged.returncode == 0 and "purged" in purged.stdout, purged.stderr
    body = inspect(client, user, instance).json()
    assert body["runtime_status"] == "PURGED"
    assert body["custom_status"] is None and body["created_at"] is None

    gone = wf(*port, "status", instance)
    assert gone.returncode == 1 and f"No workflow instance '{instance}'" in gone.stderr


def test_a_live_series_terminated_by_hand_is_brought_back_by_the_sweeper(
    stack: Stack, client: httpx.Client
) -> None:
    """The sweeper starts the workflow of a live series whose instance ended again, from the
    database: it carries on from the current occurrence and creates no occurrence twice."""
    user = new_user()
    task = create_series(client, user)
    series_id = task["series_id"]
    instance = f"series-{series_id}"
    status_becomes(client, user, instance, "RUNNING")

    terminated = wf("--dapr-grpc-port", str(stack.ports.app_sidecar.grpc), "terminate", instance)
    assert terminated.returncode == 0, terminated.stderr
    assert "-> TERMINATED" in terminated.stdout and "sweeper" in terminated.stdout

    back = status_becomes(client, user, instance, "RUNNING")
    assert back["custom_status"]["current_task_id"] == task["id"]
    assert len(occurrences(client, user, series_id)) == 1

    done = client.post(f"/v1/tasks/{task['id']}/complete", headers=auth(user))
    assert done.status_code == 200, done.text
    wait_until(lambda: len(occurrences(client, user, series_id)) == 2, what="occurrence #2")
    # Give a second workflow, were there one, every chance to create #2 again.
    wait_until(
        lambda: (
            (status_becomes(client, user, instance, "RUNNING")["custom_status"] or {}).get("occurrence_index")
            == 2
        ),
        what="the workflow to move to #2",
    )
    assert [t["occurrence_index"] for t in occurrences(client, user, series_id)] == [1, 2]


def test_the_operator_command_explains_an_unreachable_sidecar(tmp_path: Path) -> None:
    unreachable = wf("--dapr-grpc-port", "1", "status", "series-whatever")
    assert unreachable.returncode == 2
    assert "Cannot reach the Dapr sidecar at 127.0.0.1:1" in unreachable.stderr
    helped = wf("--help")
    assert helped.returncode == 0
    for command in ("status", "pause", "resume", "terminate", "purge"):
        assert command in helped.stdout


def test_a_running_workflow_left_behind_the_database_is_replaced_by_the_sweeper(
    stack: Stack, client: httpx.Client
) -> None:
    """A step whose result never reached its workflow (what a scheduler member's death left
    behind): here the test itself completes the occurrence and runs the step's activities on the
    stack's database, with no word to the instance. It waits on at occurrence 1, its timers a
    day away; the sweeper replaces it from the database once it lags past the grace (5 s on this
    stack), and the series steps on, each occurrence once."""
    user = new_user()
    task = create_series(client, user)
    series_id = task["series_id"]
    instance = f"series-{series_id}"
    status_becomes(client, user, instance, "RUNNING")
    info = DaprWorkflowGateway(port=stack.ports.app_sidecar.grpc).describe(instance)
    assert info is not None and info.serialized_input
    state = SeriesState.model_validate(json.loads(info.serialized_input))
    repaired_before = sweeper_repairs(stack).get("replaced", 0)

    unheard = FakeWorkflows()  # the completion event and the step's result go nowhere
    settings = Settings(env="dev", database_url=stack.database_url)
    services = build_services(settings, unheard, FakeJobs(), Mailer(settings))
    try:
        services.tasks.complete_task(User(id=user), uuid.UUID(task["id"]))
        progress = services.steps.load_series_progress(series_id)
        step = next_step(state, progress, datetime.now(UTC))
        assert isinstance(step, Create), step
        services.steps.create_next_occurrence(step.occurrence)
    finally:
        services.database.dispose()
    assert [t["occurrence_index"] for t in occurrences(client, user, series_id)] == [1, 2]
    assert workflow_occurrence(client, user, instance) == 1

    wait_until(lambda: workflow_occurrence(client, user, instance) == 2, timeout=90, what="the replacement")
    assert sweeper_repairs(stack).get("replaced", 0) > repaired_before
    assert [t["occurrence_index"] for t in occurrences(client, user, series_id)] == [1, 2]

    second = occurrences(client, user, series_id)[-1]
    done = client.post(f"/v1/tasks/{second['id']}/complete", headers=auth(user))
    assert done.status_code == 200, done.text
    wait_until(lambda: len(occurrences(client, user, series_id)) == 3, what="occurrence #3")
    assert [t["occurrence_index"] for t in occurrences(client, user, series_id)] == [1, 2, 3]


def workflow_occurrence(client: httpx.Client, user: str, instance: str) -> int | None:
    body = inspect(client, user, instance).json()
    if body.get("runtime_status") != "RUNNING":
        return None
    return (body.get("custom_status") or {}).get("occurrence_index")
