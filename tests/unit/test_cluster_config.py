"""The local cluster's configuration (tools/cluster), without starting it: the node's files agree
with its network plan, nothing it deploys may pull an image, and `down` can find what it made."""

from __future__ import annotations

import ipaddress
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from devstack.kubernetes_build import _STAGING_REPLACE
from tools.cluster import images, network
from tools.cluster.daemons import Daemon, alive
from tools.cluster.node import Node

pytestmark = pytest.mark.unit


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return Node(tmp_path / "cluster", tmp_path / "bin")


def test_the_kubelet_runs_on_cgroup_v1_against_the_nodes_containerd(node: Node) -> None:
    config = yaml.safe_load(node._kubelet_config())
    assert config["failCgroupV1"] is False and config["cgroupDriver"] == "cgroupfs"
    assert config["containerRuntimeEndpoint"] == f"unix://{node.containerd_socket}"
    assert config["clusterDNS"] == [network.DNS_SERVICE_IP]
    assert config["podCIDR"] == network.POD_CIDR


def test_pods_get_addresses_from_the_node_range_kept_under_the_run_directory(node: Node) -> None:
    (bridge, _) = json.loads(node._cni_config())["plugins"]
    (subnet,) = bridge["ipam"]["ranges"][0]
    pods = ipaddress.ip_network(subnet["subnet"])
    assert pods.subnet_of(ipaddress.ip_network(network.CLUSTER_CIDR))  # type: ignore[arg-type]
    assert not pods.overlaps(ipaddress.ip_network(network.SERVICE_CIDR))
    assert Path(bridge["ipam"]["dataDir"]).is_relative_to(node.run_dir)


def test_the_service_addresses_are_in_the_service_range() -> None:
    services = ipaddress.ip_network(network.SERVICE_CIDR)
    assert ipaddress.ip_address(network.API_SERVICE_IP) in services
    assert ipaddress.ip_address(network.DNS_SERVICE_IP) in services
    coredns = list(yaml.safe_load_all((Path("tools/cluster/manifests/coredns.yaml")).read_text()))
    (service,) = [doc for doc in coredns if doc["kind"] == "Service"]
    assert service["spec"]["clusterIP"] == network.DNS_SERVICE_IP


def test_no_pod_the_cluster_deploys_may_pull_an_image() -> None:
    for manifest in Path("tools/cluster/manifests").glob("*.yaml"):
        for doc in yaml.safe_load_all(manifest.read_text()):
            spec = (doc or {}).get("spec", {}).get("template", {}).get("spec", {})
            for container in spec.get("containers", []) + spec.get("initContainers", []):
                assert container.get("imagePullPolicy") == "Never", (manifest.name, container["name"])


def test_dapr_images_are_named_as_its_chart_names_them(tmp_path: Path) -> None:
    for name in ("daprd", "placement", "scheduler", "operator", "injector", "sentry"):
        (tmp_path / name).write_bytes(b"")
    built = {image.name: image for image in images.dapr_images("1.18.3", tmp_path)}
    assert set(built) == {
        f"ghcr.io/dapr/{name}:1.18.3"
        for name in ("daprd", "placement", "scheduler", "operator", "injector", "sentry")
    }
    operator = built["ghcr.io/dapr/operator:1.18.3"]
    assert operator.entrypoint == "/operator" and operator.user == images.NONROOT


def test_every_staging_module_the_go_mod_replaces_is_found() -> None:
    go_mod = """replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/cri-api => ./staging/src/k8s.io/cri-api
\tgithub.com/other/module => ../elsewhere
)
"""
    assert _STAGING_REPLACE.findall(go_mod) == ["k8s.io/api", "k8s.io/cri-api"]


def test_every_cluster_process_runs_in_the_clusters_network_namespace(node: Node) -> None:
    daemons = node.daemons()
    assert [d.name for d in daemons][:3] == ["containerd", "etcd", "kube-apiserver"]
    for daemon in daemons:
        assert daemon.argv[:2] == ["nsenter", f"--net={network.NETNS_PATH}"], daemon.name


@pytest.mark.timeout(30)
def test_a_daemon_outlives_its_starter_and_stops_with_its_children(tmp_path: Path) -> None:
    daemon = Daemon("sleeper", ["sh", "-c", "sleep 300 & sleep 300"], tmp_path, ready=lambda: True)
    daemon.start(timeout=5)
    pid = daemon.pid()
    assert pid is not None and int(daemon.pid_file.read_text()) == pid
    children = subprocess.run(["pgrep", "-g", str(pid)], capture_output=True, text=True).stdout.split()
    assert len(children) >= 2
    daemon.stop(timeout=5)
    assert daemon.pid() is None and not daemon.pid_file.exists()
    left = subprocess.run(["pgrep", "-g", str(pid)], capture_output=True, text=True).stdout.split()
    # Dead ones may linger as zombies until their parent (this test, or init) reaps them.
    running = [p for p in left if alive(int(p))]
    assert running == [], f"left running: {running}"
