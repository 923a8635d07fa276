"""The cloud environments' values judged by the live API server (`./task cluster:dry-run`):
the chart rendered with values-oke.yaml, values-aks.yaml or values-gke.yaml (monitoring on, so
the PodMonitor and PrometheusRule are rendered too) and applied with `kubectl apply
--dry-run=server`. Admission, the built-in kinds' validation and every CRD's schema judge each
object (Dapr's CRDs from its chart, Strimzi's and the Prometheus Operator's from
devstack/operator_crds.py) as a cloud cluster's API server would; nothing is stored."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

import yaml

from devstack import progress, toolchain
from tools.cluster.app import CHART, RELEASE
from tools.cluster.node import Node
from tools.cluster.platform import ensure_namespace, helm_command, kubectl

ENVIRONMENTS = ("oke", "aks", "gke")
# Empty and kept: namespaced objects can be judged only in a namespace that exists.
NAMESPACE = "todo-dry-run"
MONITORING = CHART / "ci" / "values-monitoring.yaml"


@dataclass(frozen=True)
class Verdict:
    rendered: list[str]
    accepted: list[str]
    errors: str

    @property
    def ok(self) -> bool:
        return not self.errors and sorted(self.accepted) == sorted(self.rendered)


def prepare(node: Node) -> None:
    """The operators' CRDs (established) and the namespace the objects are judged in."""
    crds = toolchain.ensure(toolchain.OPERATOR_CRDS)
    with progress.step("Installing the Strimzi and Prometheus Operator CRDs"):
        # Server-side: Strimzi's Kafka CRD is larger than client-side apply's annotation allows.
        kubectl(node, "apply", "--server-side", "--force-conflicts", "-f", str(crds))
        names = [yaml.safe_load(path.read_text())["metadata"]["name"] for path in sorted(crds.glob("*.yaml"))]
        kubectl(node, "wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in names))
    ensure_namespace(node, NAMESPACE)


def render(node: Node, environment: str) -> str:
    """The release as Helm would install it on this cluster (its Kubernetes version: helm
    template's default is older than the chart's kubeVersion allows)."""
    values = CHART / f"values-{environment}.yaml"
    command = helm_command(node, "template", RELEASE, str(CHART), f"--namespace={NAMESPACE}")
    command += [
        f"--kube-version={toolchain.KUBERNETES_VERSION}",
        f"--values={values}",
        f"--values={MONITORING}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"helm template with {values.name} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def judge(node: Node, manifest: str) -> Verdict:
    """What the API server says of every object of a rendering."""
    rendered = [
        f"{doc['kind'].lower()}/{doc['metadata']['name']}" for doc in yaml.safe_load_all(manifest) if doc
    ]
    result = subprocess.run(
        node.kubectl("apply", "--dry-run=server", f"--namespace={NAMESPACE}", "-o", "name", "-f", "-"),
        input=manifest,
        capture_output=True,
        text=True,
        check=False,
    )
    # `-o name` prints kind.group/name; the group is not in what was rendered.
    accepted = [
        f"{line.split('/')[0].split('.')[0]}/{line.split('/', 1)[1]}" for line in result.stdout.split()
    ]
    return Verdict(rendered, accepted, result.stderr.strip())


def dry_run(node: Node, environments: list[str]) -> int:
    prepare(node)
    failed = 0
    for environment in environments:
        with progress.step(f"values-{environment}.yaml: kubectl apply --dry-run=server"):
            verdict = judge(node, render(node, environment))
            if verdict.ok:
                progress.say(f"    all {len(verdict.rendered)} objects accepted")
            else:
                failed += 1
                missing = sorted(set(verdict.rendered) - set(verdict.accepted))
                progress.say(f"    refused: {', '.join(missing) or '-'}\n{verdict.errors}")
    return 1 if failed else 0
