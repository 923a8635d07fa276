"""What the chart renders: security, Dapr wiring and scoping, and the values it refuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.conftest import Chart, Doc, find, one
from tools.cluster.app import OVERLAY as LOCAL_CLUSTER_VALUES
from tools.delivery.chart import ENVIRONMENTS, REPO_ROOT

ENVS = list(ENVIRONMENTS)
WORKLOAD_KINDS = ("Deployment", "Job", "Pod")


def pod_spec(doc: Doc) -> dict[str, Any]:
    return doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]


def annotations(docs: list[Doc], role: str) -> dict[str, str]:
    deployment = one(docs, "Deployment", f"todo-todo-workflows-{role}")
    return deployment["spec"]["template"]["metadata"]["annotations"]


def env_of(doc: Doc) -> dict[str, Any]:
    container = pod_spec(doc)["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.mark.parametrize("env", ENVS)
def test_every_container_is_locked_down(chart: Chart, env: str) -> None:
    docs = chart.render(env)
    workloads = [d for d in docs if d["kind"] in WORKLOAD_KINDS]
    assert {d["kind"] for d in workloads} == set(WORKLOAD_KINDS)
    for doc in workloads:
        spec = pod_spec(doc)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        for container in spec["containers"]:
            ctx = container["securityContext"]
            where = f"{doc['kind']}/{doc['metadata']['name']}/{container['name']}"
            assert ctx["runAsNonRoot"] is True, where
            assert ctx["readOnlyRootFilesystem"] is True, where
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["capabilities"]["drop"] == ["ALL"], where
            assert ctx["seccompProfile"]["type"] == "RuntimeDefault", where
            assert set(container["resources"]) == {"requests", "limits"}, where


@pytest.mark.parametrize("env", ENVS)
def test_roles_get_their_sidecar_and_probes(chart: Chart, env: str) -> None:
    docs = chart.render(env)
    config = one(docs, "Configuration", "todo-todo-workflows")
    for role, app_id in (("api", "todo-api"), ("audit", "todo-audit")):
        notes = annotations(docs, role)
        assert notes["dapr.io/enabled"] == "true"
        assert notes["dapr.io/app-id"] == app_id
        assert notes["dapr.io/app-port"] == "8000"
        assert notes["dapr.io/config"] == config["metadata"]["name"]
        assert notes["dapr.io/enable-metrics"] == "true"
        assert notes["dapr.io/metrics-port"] == "9090"
        assert notes["dapr.io/log-level"] in {"debug", "info"}
        for key in ("cpu-request", "memory-request", "cpu-limit", "memory-limit"):
            assert notes[f"dapr.io/sidecar-{key}"]
        deployment = one(docs, "Deployment", f"todo-todo-workflows-{role}")
        container = pod_spec(deployment)["containers"][0]
        assert container["args"] == [role]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        env_vars = env_of(deployment)
        assert env_vars["TODO_ROLE"] == role
        # The app checks the token daprd sends: both read the same Secret key.
        token_ref = env_vars["TODO_APP_API_TOKEN"]["secretKeyRef"]
        assert token_ref == {"name": notes["dapr.io/app-token-secret"], "key": "token"}
        assert env_vars["TODO_PUBSUB_NAME"] == "taskpubsub"


@pytest.mark.parametrize("env", ENVS)
def test_dapr_resources_are_scoped_to_the_app_ids_that_use_them(chart: Chart, env: str) -> None:
    docs = chart.render(env)
    state = one(docs, "Component", "statestore")
    assert state["spec"]["type"] == "state.postgresql"
    assert state["spec"]["version"] == "v2"
    assert {"name": "actorStateStore", "value": "true"} in state["spec"]["metadata"]
    assert state["scopes"] == ["todo-api"]

    pubsub = one(docs, "Component", "taskpubsub")
    assert pubsub["spec"]["type"] == "pubsub.kafka"
    meta = {m["name"]: m for m in pubsub["spec"]["metadata"]}
    assert meta["version"]["value"] == "3.9.0"
    assert pubsub["scopes"] == ["todo-api", "todo-audit"]
    for secret_backed in ("saslPassword", "caCert"):
        if secret_backed in meta:
            assert "secretKeyRef" in meta[secret_backed] and "value" not in meta[secret_backed]

    subscriptions = find(docs, "Subscription")
    topics = {"task-events", "reminders", "task-updates"}
    assert {s["spec"]["topic"] for s in subscriptions} == topics | {f"{t}-dlq" for t in topics}
    for sub in subscriptions:
        assert sub["apiVersion"] == "dapr.io/v2alpha1"
        assert sub["scopes"] == ["todo-audit"]
        assert sub["spec"]["pubsubname"] == "taskpubsub"
        if sub["spec"]["topic"] in topics:
            assert sub["spec"]["deadLetterTopic"] == sub["spec"]["topic"] + "-dlq"

    resiliency = one(docs, "Resiliency", "todo-todo-workflows")
    target = resiliency["spec"]["targets"]["components"]["taskpubsub"]
    assert target["outbound"]["circuitBreaker"] in resiliency["spec"]["policies"]["circuitBreakers"]
    assert target["outbound"]["retry"] in resiliency["spec"]["policies"]["retries"]
    assert resiliency["scopes"] == ["todo-api", "todo-audit"]


def test_cloud_secret_stores_are_components_the_others_reference(chart: Chart) -> None:
    expected = {
        "oke": "secretstores.oci.vault",
        "aks": "secretstores.azure.keyvault",
        "gke": "secretstores.gcp.secretmanager",
    }
    for env, store_type in expected.items():
        docs = chart.render(env)
        store = one(docs, "Component", "todo-secrets")
        assert store["spec"]["type"] == store_type
        for name in ("statestore", "taskpubsub"):
            assert one(docs, "Component", name)["auth"]["secretStore"] == "todo-secrets"
        assert annotations(docs, "api")["dapr.io/disable-builtin-k8s-secret-store"] == "true"
    local = chart.render("minikube")
    assert not [c for c in find(local, "Component") if c["spec"]["type"].startswith("secretstores.")]
    assert one(local, "Component", "statestore")["auth"]["secretStore"] == "kubernetes"


def test_network_policy_lets_in_only_sidecars_ingress_and_scrapers(chart: Chart) -> None:
    docs = chart.render("oke")
    for role in ("api", "audit"):
        policy = one(docs, "NetworkPolicy", f"todo-todo-workflows-{role}")
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
        assert ports == {50002, 8000, 9090}
        from_ingress = [
            rule
            for rule in policy["spec"]["ingress"]
            for peer in rule["from"]
            if peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
            == "ingress-nginx"
        ]
        assert bool(from_ingress) == (role == "api")
        egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
        assert {53, 50005, 50006, 5432, 9092}.issubset(egress_ports)


def test_strimzi_topics_follow_the_environment_retention(chart: Chart) -> None:
    for env, days in (("minikube", 7), ("oke", 30), ("gke", 30)):
        topics = find(chart.render(env), "KafkaTopic")
        assert {t["metadata"]["name"] for t in topics} == {
            name + suffix for name in ("task-events", "reminders", "task-updates") for suffix in ("", "-dlq")
        }
        for topic in topics:
            assert topic["spec"]["partitions"] == 12
            assert topic["spec"]["config"]["retention.ms"] == days * 86_400_000
    aks = chart.render("aks")
    assert not find(aks, "Kafka") and not find(aks, "KafkaTopic")
    assert one(aks, "Component", "taskpubsub")["spec"]["metadata"][0]["value"].endswith(":9092")


def test_migration_runs_as_a_hook_before_install_and_upgrade(chart: Chart) -> None:
    job = one(chart.render(), "Job", "todo-todo-workflows-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert pod_spec(job)["containers"][0]["args"] == ["migrate"]
    test_pod = one(chart.render(), "Pod", "todo-todo-workflows-test-readyz")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert "/readyz" in " ".join(pod_spec(test_pod)["containers"][0]["args"])


UNIT_BYTES = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def quantity_bytes(quantity: str) -> float:
    number = quantity.rstrip("kMGi")
    return float(number) * UNIT_BYTES[quantity[len(number) :]]


@pytest.mark.parametrize("env", ENVS)
def test_sidecars_get_a_go_memory_limit_under_their_memory_limit(chart: Chart, env: str) -> None:
    for role in ("api", "audit"):
        notes = annotations(chart.render(env), role)
        limit = quantity_bytes(notes["dapr.io/sidecar-memory-limit"])
        (setting,) = notes["dapr.io/env"].split(",")
        name, value = setting.split("=")
        assert name == "GOMEMLIMIT" and value.endswith("MiB"), setting
        assert 0.85 * limit <= int(value.removesuffix("MiB")) * 2**20 < 0.9 * limit + 2**20, (role, setting)


def test_the_api_sidecar_is_sized_apart_from_the_audit_one(chart: Chart) -> None:
    docs = chart.render("default")
    assert annotations(docs, "api")["dapr.io/sidecar-memory-limit"] == "512Mi"
    assert annotations(docs, "api")["dapr.io/env"] == "GOMEMLIMIT=460MiB"
    assert annotations(docs, "audit")["dapr.io/sidecar-memory-limit"] == "256Mi"
    assert annotations(docs, "audit")["dapr.io/env"] == "GOMEMLIMIT=230MiB"
    for env in ("oke", "aks", "gke"):
        assert annotations(chart.render(env), "api")["dapr.io/sidecar-memory-limit"] == "1Gi"

    docs = chart.render(
        "default",
        {"api": {"sidecarMemoryLimit": "1.5Gi"}, "dapr": {"sidecar": {"extraEnv": {"GOGC": "50"}}}},
    )
    assert annotations(docs, "api")["dapr.io/env"] == "GOMEMLIMIT=1382MiB,GOGC=50"
    docs = chart.render("default", {"dapr": {"sidecar": {"goMemLimitPercent": 0}}})
    assert "dapr.io/env" not in annotations(docs, "api")


def test_mcp_accepts_the_ingress_host(chart: Chart) -> None:
    deployment = one(chart.render("gke"), "Deployment", "todo-todo-workflows-api")
    assert env_of(deployment)["TODO_MCP_ALLOWED_HOSTS"] == '["todo.example.com"]'


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"api": {"replicas": "two"}}, "/api/replicas"),
        ({"environment": "staging"}, "/environment"),
        ({"dapr": {"pubsub": {"brokerz": "kafka:9092"}}}, "brokerz"),
        ({"dapr": {"secretStore": {"type": "vault"}}}, "/dapr/secretStore/type"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"dapr": {"pubsub": {"brokers": "kafka 9092"}}}, "/dapr/pubsub/brokers"),
        ({"api": {"resources": {"limits": {"cpu": "1", "memory": "lots"}}}}, "/api/resources/limits/memory"),
        ({"dapr": {"pubsub": {"auth": {"type": "password"}}}}, "/dapr/pubsub/auth/username"),
        ({"audit": {"autoscaling": {"maxReplicas": 20}}}, "/audit/autoscaling/maxReplicas"),
        ({"dapr": {"sidecar": {"goMemLimitPercent": 150}}}, "/dapr/sidecar/goMemLimitPercent"),
        ({"dapr": {"sidecar": {"extraEnv": {"GODEBUG": "a=1,b=2"}}}}, "/dapr/sidecar/extraEnv/GODEBUG"),
        ({"api": {"sidecarMemoryLimit": "a lot"}}, "/api/sidecarMemoryLimit"),
    ],
)
def test_schema_refuses_bad_values_naming_the_field(chart: Chart, values: dict[str, Any], field: str) -> None:
    error = chart.refuse("minikube", values)
    assert "values don't meet the specifications of the schema" in error
    assert field in error, error


def test_template_refuses_a_network_policy_without_a_database_route(chart: Chart) -> None:
    error = chart.refuse("default", {"postgres": {"podSelector": None}})
    assert "needs a way to PostgreSQL" in error


def test_chart_check_fails_readably_for_a_broken_values_file(tmp_path: Path) -> None:
    broken = tmp_path / "values-broken.yaml"
    broken.write_text(yaml.safe_dump({"dapr": {"pubsub": {"kafkaVersion": 3.9}}, "api": {"replicas": 0}}))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.delivery.chart",
            "--skip-checkov",
            "--out",
            str(tmp_path),
            "--values",
            str(broken),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "The chart check FAILED" in result.stderr
    assert "[values-broken] helm lint --strict failed" in result.stderr
    assert "/dapr/pubsub/kafkaVersion" in result.stderr
    assert "/api/replicas" in result.stderr


@pytest.mark.parametrize(
    ("auth", "field"),
    [
        (
            {"jwksUrl": "https://auth.example.com/api/auth/jwks", "issuer": "https://auth.example.com"},
            "audience",
        ),
        ({"jwksUrl": "https://auth.example.com/api/auth/jwks", "audience": "todo-api"}, "issuer"),
        (
            {
                "jwksUrl": "http://auth.example.com/jwks",
                "audience": "todo-api",
                "issuer": "https://auth.example.com",
            },
            "jwksUrl",
        ),
    ],
)
def test_schema_refuses_a_jwks_url_the_app_would_refuse(
    chart: Chart, auth: dict[str, str], field: str
) -> None:
    # The app does not start with these outside dev (todos/settings.py); helm says so first.
    error = chart.refuse("default", {"auth": auth})
    assert f"/auth/{field}" in error, error
    pinned = {
        "jwksUrl": "https://auth.example.com/api/auth/jwks",
        "audience": "todo-api",
        "issuer": "https://a",
    }
    assert chart.render("default", {"auth": pinned})
    assert chart.render("minikube", {"auth": {**auth, "audience": "", "issuer": ""}})  # dev


def test_on_the_local_cluster_no_pod_may_pull(chart: Chart) -> None:
    """With the local cluster's overlay (tools/cluster/values-local.yaml) every pod the chart
    renders, hooks and `helm test` included, runs an image already on the node."""
    overlay = yaml.safe_load(LOCAL_CLUSTER_VALUES.read_text())
    docs = chart.render("minikube", overlay)
    workloads = [d for d in docs if d["kind"] in WORKLOAD_KINDS]
    assert {d["kind"] for d in workloads} == set(WORKLOAD_KINDS)
    for doc in workloads:
        spec = pod_spec(doc)
        for container in spec["containers"] + spec.get("initContainers", []):
            where = f"{doc['kind']}/{doc['metadata']['name']}/{container['name']}"
            assert container["imagePullPolicy"] == "Never", where
            assert container["image"] == "todo-workflows:dev", where
