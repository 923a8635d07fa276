"""The cluster's own network namespace: every cluster process runs in it, so a pod has no route
off this machine (the namespace has none) and the cluster's ports never meet the host's.

The host reaches the node through a veth pair: 10.233.0.1 on the host side, the node's address
10.233.0.2 inside. Inside, the CNI bridge puts pods in 10.234.0.0/24 and kube-proxy serves the
Service range 10.235.0.0/16. The host forwards nothing from or to the veth pair, whatever
its own forwarding settings."""

from __future__ import annotations

import subprocess
from pathlib import Path

from devstack.apt import as_root

NETNS = "todo-cluster"
NETNS_PATH = Path("/run/netns") / NETNS
HOST_VETH = "todo-cluster0"
NODE_VETH = "eth0"
HOST_IP = "10.233.0.1"
NODE_IP = "10.233.0.2"
POD_CIDR = "10.234.0.0/24"
CLUSTER_CIDR = "10.234.0.0/16"
SERVICE_CIDR = "10.235.0.0/16"
API_SERVICE_IP = "10.235.0.1"
DNS_SERVICE_IP = "10.235.0.10"
# Bridged pod traffic passes iptables (kube-proxy's Service rules) and the node forwards it.
_SYSCTLS = {"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"}


# The host forwards nothing to or from the cluster: the node reaches the host, and that is all.
_NO_FORWARDING = (["FORWARD", "-i", HOST_VETH, "-j", "DROP"], ["FORWARD", "-o", HOST_VETH, "-j", "DROP"])


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(as_root("ip", *args), capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise SystemExit(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")
    return result


def inside(*command: str) -> list[str]:
    """The command, run in the cluster's network namespace (and only that namespace: the files
    and mounts it sees are the host's, so `down` finds everything it made)."""
    return as_root("nsenter", f"--net={NETNS_PATH}", "--", *command)


def exists() -> bool:
    return NETNS_PATH.exists()


def processes() -> list[int]:
    """The pids running in the namespace (none when it does not exist)."""
    if not exists():
        return []
    return [int(pid) for pid in _ip("netns", "pids", NETNS, check=False).stdout.split()]


def create() -> None:
    """The namespace, its loopback, and the veth pair to the host (idempotent)."""
    if not exists():
        _ip("netns", "add", NETNS)
    _ip("-n", NETNS, "link", "set", "lo", "up")
    if _ip("link", "show", HOST_VETH, check=False).returncode != 0:
        _ip("link", "add", HOST_VETH, "type", "veth", "peer", "name", NODE_VETH, "netns", NETNS)
        _ip("addr", "add", f"{HOST_IP}/30", "dev", HOST_VETH)
        _ip("-n", NETNS, "addr", "add", f"{NODE_IP}/30", "dev", NODE_VETH)
    _ip("link", "set", HOST_VETH, "up")
    _ip("-n", NETNS, "link", "set", NODE_VETH, "up")
    for key, value in _SYSCTLS.items():
        subprocess.run(inside("sysctl", "-q", "-w", f"{key}={value}"), check=True)
    # The node's own calls to a Service address (kube-apiserver to an admission webhook, a
    # probe) need a route before kube-proxy's rules rewrite them to a pod.
    _ip("-n", NETNS, "route", "replace", SERVICE_CIDR, "dev", NODE_VETH, "src", NODE_IP)
    for rule in _NO_FORWARDING:
        if subprocess.run(as_root("iptables", "-C", *rule), capture_output=True, check=False).returncode != 0:
            subprocess.run(as_root("iptables", "-I", *rule), check=True)


def delete() -> None:
    """The namespace and with it the veth pair and the CNI bridge, and the host's rules (idempotent)."""
    for rule in _NO_FORWARDING:
        while (
            subprocess.run(as_root("iptables", "-D", *rule), capture_output=True, check=False).returncode == 0
        ):
            pass
    _ip("link", "delete", HOST_VETH, check=False)
    if exists():
        _ip("netns", "delete", NETNS)
