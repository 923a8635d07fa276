"""What the cluster runs before our chart: CoreDNS, local volumes, and Dapr from its own Helm chart
(the github.com/dapr/dapr module's charts/dapr) on images built from our Dapr build."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from devstack import progress, toolchain
from tools.cluster.node import Node

MANIFESTS = Path(__file__).parent / "manifests"
DAPR_NAMESPACE = "dapr-system"
STORAGE_CLASS = "todo-local"
VOLUMES = 6


def kubectl(node: Node, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(node.kubectl(*args), capture_output=True, text=True, check=False, input=stdin)
    if result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def ensure_namespace(node: Node, name: str) -> None:
    kubectl(node, "apply", "-f", "-", stdin=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")


def deploy_coredns(node: Node) -> None:
    with progress.step("Deploying CoreDNS"):
        kubectl(node, "apply", "-f", str(MANIFESTS / "coredns.yaml"))
        kubectl(node, "-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=180s")


def deploy_storage(node: Node) -> None:
    """The default StorageClass and `VOLUMES` hostPath volumes for it (Dapr's scheduler and the
    in-cluster PostgreSQL and Kafka claim one each)."""
    volumes = []
    for index in range(VOLUMES):
        path = node.run_dir / "volumes" / f"pv-{index}"
        path.mkdir(parents=True, exist_ok=True)
        # Each claimant runs as its own user (Dapr's 65532, postgres, kafka): a local volume
        # is theirs to write.
        path.chmod(0o777)
        volumes.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": f"todo-local-{index}"},
                "spec": {
                    "capacity": {"storage": "20Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": STORAGE_CLASS,
                    "hostPath": {"path": str(path), "type": "Directory"},
                },
            }
        )
    with progress.step(f"Creating the {STORAGE_CLASS} StorageClass and {VOLUMES} local volumes"):
        kubectl(node, "apply", "-f", str(MANIFESTS / "storage.yaml"))
        kubectl(
            node, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": volumes})
        )


def helm_command(node: Node, *args: str) -> list[str]:
    return [str(toolchain.ensure(toolchain.HELM)), f"--kubeconfig={node.kubeconfig}", *args]


def helm_upgrade(node: Node, title: str, release: str, chart: Path, namespace: str, *args: str) -> None:
    """`helm upgrade --install --wait`; on failure, what Helm said and the namespace's pods."""
    command = helm_command(node, "upgrade", "--install", release, str(chart))
    command += [f"--namespace={namespace}", *args, "--wait", "--timeout=10m"]
    with progress.step(title):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            pods = subprocess.run(
                node.kubectl("-n", namespace, "get", "pods", "-o", "wide"), capture_output=True, text=True
            )
            raise SystemExit(
                f"helm upgrade --install {release} failed:\n{result.stderr[-3000:]}\n{pods.stdout}"
            )


def install_dapr(node: Node) -> None:
    """Dapr's chart with mTLS on (its default), every image already on the node (pull policy
    Never), the scheduler's etcd on a local volume."""
    helm_upgrade(
        node,
        f"Installing Dapr {toolchain.DAPR_VERSION} with its Helm chart (mTLS on)",
        "dapr",
        toolchain.dapr_source() / "charts" / "dapr",
        DAPR_NAMESPACE,
        "--create-namespace",
        f"--set=global.tag={toolchain.DAPR_VERSION}",
        "--set=global.imagePullPolicy=Never",
        "--set=global.mtls.enabled=true",
        f"--set=dapr_scheduler.cluster.storageClassName={STORAGE_CLASS}",
        "--set=dapr_scheduler.cluster.storageSize=1Gi",
    )
