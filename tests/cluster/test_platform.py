"""The platform under our chart, live: a real control plane and kubelet on containerd, CoreDNS,
Dapr's control plane from its own chart with mTLS, every image built here (none pulled), and no
route off the machine."""

from __future__ import annotations

import base64
import subprocess

import pytest

from devstack import toolchain
from tests.cluster.conftest import Cluster
from tools.cluster import images, network
from tools.cluster.dependencies import NAMESPACE
from tools.cluster.platform import DAPR_NAMESPACE

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]


def test_every_pod_is_ready(cluster: Cluster) -> None:
    pods = cluster.get("pods", "--all-namespaces")["items"]
    assert pods, "no pods"
    unready = [
        f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        for pod in pods
        if not any(
            c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", [])
        )
    ]
    assert unready == []
    components = {pod["metadata"]["labels"].get("app") for pod in pods}
    for expected in ("dapr-operator", "dapr-placement-server", "dapr-scheduler-server", "dapr-sentry"):
        assert expected in components, components


def test_the_node_runs_kubernetes_1_34_on_containerd(cluster: Cluster) -> None:
    (node,) = cluster.get("nodes")["items"]
    info = node["status"]["nodeInfo"]
    assert info["kubeletVersion"] == toolchain.KUBERNETES_VERSION
    assert info["containerRuntimeVersion"].startswith("containerd://1.6")
    assert {a["address"] for a in node["status"]["addresses"]} >= {network.NODE_IP}


def test_dapr_runs_with_mtls_and_a_trust_bundle_from_sentry(cluster: Cluster) -> None:
    config = cluster.get("configurations.dapr.io", "daprsystem", "-n", DAPR_NAMESPACE)
    assert config["spec"]["mtls"]["enabled"] is True
    bundle = cluster.get("secret", "dapr-trust-bundle", "-n", DAPR_NAMESPACE)["data"]
    for key in ("ca.crt", "issuer.crt", "issuer.key"):
        assert base64.b64decode(bundle[key]), key
    versions = {
        container["image"]
        for pod in cluster.get("pods", "-n", DAPR_NAMESPACE)["items"]
        for container in pod["spec"]["containers"]
    }
    assert all(image.endswith(f":{toolchain.DAPR_VERSION}") for image in versions), versions


def test_no_pod_pulls_an_image(cluster: Cluster) -> None:
    """Every container's image is one built here and loaded into the node, and no pod may pull."""
    present = set(
        subprocess.run(
            cluster.node.ctr("images", "list", "-q"), capture_output=True, text=True, check=True
        ).stdout.split()
    )
    for pod in cluster.get("pods", "--all-namespaces")["items"]:
        spec = pod["spec"]
        for container in spec["containers"] + spec.get("initContainers", []):
            assert container["imagePullPolicy"] in ("Never", "IfNotPresent"), container["name"]
            assert images.qualified(container["image"]) in present, container["image"]
    log = (cluster.node.run_dir / "logs" / "containerd.log").read_text(errors="replace")
    assert "PullImage" not in log, "containerd was asked to pull an image"


def test_the_cluster_has_no_route_off_the_machine(cluster: Cluster) -> None:
    outside = subprocess.run(
        network.inside("ip", "route", "get", "192.0.2.1"), capture_output=True, text=True, check=False
    )
    assert outside.returncode != 0 and "unreachable" in outside.stderr.lower(), outside
    # The host, through the veth pair, is the one address off the node it reaches.
    host = subprocess.run(
        network.inside("ip", "route", "get", network.HOST_IP), capture_output=True, text=True
    )
    assert host.returncode == 0 and "todo-cluster" not in host.stdout
    # And the host passes nothing on, whatever its own forwarding (Docker turns it on).
    for direction in ("-i", "-o"):
        rule = ["iptables", "-C", "FORWARD", direction, network.HOST_VETH, "-j", "DROP"]
        assert subprocess.run(rule, capture_output=True, check=False).returncode == 0, rule


# One A query over UDP, run in the node's network namespace: (rcode, the answer's addresses).
_DNS_QUERY = """
import socket, struct, sys
name = sys.argv[1]
query = struct.pack(">HHHHHH", 0x7A11, 0x0100, 1, 0, 0, 0)
query += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\\0" + struct.pack(">HH", 1, 1)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(5)
sock.sendto(query, (sys.argv[2], 53))
reply = sock.recv(512)
count = struct.unpack(">H", reply[6:8])[0]
ends = [len(reply) - i * 16 for i in range(count)]
print(reply[3] & 0x0F, " ".join(socket.inet_ntoa(reply[end - 4:end]) for end in ends))
"""


def resolve(name: str) -> tuple[int, list[str]]:
    out = subprocess.run(
        network.inside("python3", "-c", _DNS_QUERY, name, network.DNS_SERVICE_IP),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return int(out[0]), out[1:]


def test_cluster_dns_answers_for_services_and_nothing_else(cluster: Cluster) -> None:
    """CoreDNS behind its Service address answers cluster names; it forwards nothing off the
    machine, so any other name gets no address."""
    assert resolve("kubernetes.default.svc.cluster.local") == (0, [network.API_SERVICE_IP])
    rcode, addresses = resolve("example.com")
    assert addresses == [] and rcode != 0


def _selector(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def test_each_network_policy_selects_its_pods_and_every_pod_peer_exists(cluster: Cluster) -> None:
    """The bridge CNI does not enforce NetworkPolicy (README), so what this cluster can prove is
    the policies' aim: each selects its role's running pods, and every in-namespace pod peer
    it allows (the sidecars, PostgreSQL, the sink) matches a running pod; a label renamed on
    either side would leave a policy that, enforced, cuts the app off."""
    # The migrate and test policies select hook pods, which run only during an install or test.
    policies = [
        p
        for p in cluster.get("networkpolicies", "-n", NAMESPACE)["items"]
        if p["metadata"]["name"] in ("todo-workflows-api", "todo-workflows-audit")
    ]
    assert len(policies) == 2, policies
    for policy in policies:
        spec = policy["spec"]
        role = policy["metadata"]["labels"]["app.kubernetes.io/component"]
        selected = cluster.get("pods", "-n", NAMESPACE, "-l", _selector(spec["podSelector"]["matchLabels"]))
        assert selected["items"], f"{policy['metadata']['name']} selects no pod"
        assert {p["metadata"]["labels"]["app.kubernetes.io/component"] for p in selected["items"]} == {role}
        peers = [
            peer["podSelector"]
            for rule in [*spec.get("ingress", []), *spec.get("egress", [])]
            for peer in rule.get("from", rule.get("to", []))
            if "podSelector" in peer and "namespaceSelector" not in peer
        ]
        assert peers, policy
        for peer in peers:
            assert set(peer) == {"matchLabels"}, peer
            matched = cluster.get("pods", "-n", NAMESPACE, "-l", _selector(peer["matchLabels"]))["items"]
            assert matched, (
                f"{policy['metadata']['name']} allows pods labelled {peer['matchLabels']}: none runs"
            )
