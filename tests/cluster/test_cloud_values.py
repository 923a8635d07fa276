"""The OKE, AKS and GKE values before any cloud cluster sees them: rendered and applied with
`kubectl apply --dry-run=server` on the live cluster, where admission, the built-in kinds'
validation and the Dapr, Strimzi and Prometheus Operator CRDs' schemas judge every object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.cluster.conftest import Cluster
from tools.cluster import dry_run

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def prepared(cluster: Cluster) -> Cluster:
    dry_run.prepare(cluster.node)
    return cluster


@pytest.mark.parametrize("environment", dry_run.ENVIRONMENTS)
def test_the_api_server_accepts_every_object_of_the_environment(prepared: Cluster, environment: str) -> None:
    verdict = dry_run.judge(prepared.node, dry_run.render(prepared.node, environment))
    assert verdict.ok, verdict.errors
    kinds = {name.split("/")[0] for name in verdict.accepted}
    assert {"deployment", "component", "podmonitor", "prometheusrule", "networkpolicy"} <= kinds
    # AKS uses the provider's Kafka; the others run Strimzi's.
    if environment != "aks":
        assert {"kafka", "kafkanodepool", "kafkatopic"} <= kinds


def _first(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(doc for doc in docs if doc["kind"] == kind)


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        target: Any = doc
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        target[leaf] = value

    return change


# One object each validator judges, made invalid past what the chart's values schema can see.
BROKEN = {
    "Deployment": _set("spec.replicas", -1),
    "Component": _set("spec.metadata", "brokers=kafka:9092"),
    "KafkaTopic": _set("spec.partitions", 0),
    "PodMonitor": _set("spec.podMetricsEndpoints.0.interval", "often"),
}


def test_what_the_schemas_refuse_is_refused_by_name(prepared: Cluster) -> None:
    docs = [doc for doc in yaml.safe_load_all(dry_run.render(prepared.node, "gke")) if doc]
    broken = []
    for kind, change in BROKEN.items():
        doc = _first(docs, kind)
        change(doc)
        broken.append(f"{kind.lower()}/{doc['metadata']['name']}")
    verdict = dry_run.judge(prepared.node, yaml.safe_dump_all(docs))
    assert not verdict.ok
    assert sorted(set(verdict.rendered) - set(verdict.accepted)) == sorted(broken), verdict.errors
    for field in ("spec.replicas", "spec.metadata", "spec.partitions", "interval"):
        assert field in verdict.errors, verdict.errors
