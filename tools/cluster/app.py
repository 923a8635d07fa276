"""Our chart on the local cluster: `helm upgrade --install` from values-minikube.yaml plus the
overlay tools/cluster/values-local.yaml, and HAProxy (Debian's) forwarding 127.0.0.1:18000 on
the host to the API's node port, so the API answers where the README says."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from devstack import progress
from devstack.balancer import haproxy
from devstack.paths import REPO_ROOT
from tools.cluster import network
from tools.cluster.daemons import Daemon
from tools.cluster.dependencies import NAMESPACE
from tools.cluster.node import Node
from tools.cluster.platform import helm_upgrade, kubectl

RELEASE = "todo-workflows"
CHART = REPO_ROOT / "charts" / "todo-workflows"
OVERLAY = Path(__file__).parent / "values-local.yaml"
API_URL = "http://127.0.0.1:18000"


def install(node: Node, *extra: str) -> None:
    """Install or upgrade the release (its migration Job runs as the pre-install/pre-upgrade hook)."""
    values = [f"--values={CHART / 'values-minikube.yaml'}", f"--values={OVERLAY}"]
    title = f"Installing the chart {RELEASE} (helm upgrade --install)"
    helm_upgrade(node, title, RELEASE, CHART, NAMESPACE, *values, *extra)


def forwarder(node: Node) -> Daemon:
    """HAProxy from 127.0.0.1:18000 to the API Service's node port on the node."""
    return Daemon(
        "api-forwarder",
        [haproxy(), "-db", "-f", str(node.run_dir / "conf" / "haproxy.cfg")],
        node.run_dir,
        _api_answers,
    )


def forward_api(node: Node) -> None:
    service = json.loads(kubectl(node, "-n", NAMESPACE, "get", "service", f"{RELEASE}-api", "-o", "json"))
    node_port = service["spec"]["ports"][0]["nodePort"]
    config = f"""\
# Written by tools/cluster/app.py: the API of the local cluster at {API_URL}.
defaults
    mode tcp
    timeout connect 5s
    timeout client 120s
    timeout server 120s

frontend api
    bind 127.0.0.1:18000
    default_backend node

backend node
    server node {network.NODE_IP}:{node_port}
"""
    path = node.run_dir / "conf" / "haproxy.cfg"
    daemon = forwarder(node)
    if not path.exists() or path.read_text() != config:
        path.write_text(config)
        daemon.stop()
    with progress.step(f"Forwarding {API_URL} to the API's node port {node_port}"):
        daemon.start(timeout=60)


def _api_answers() -> bool:
    with urllib.request.urlopen(f"{API_URL}/healthz", timeout=2) as response:  # noqa: S310
        return bool(response.status == 200)
