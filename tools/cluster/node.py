"""The node: containerd (Debian's), etcd and the Kubernetes control plane, kubelet and kube-proxy,
each a process in the cluster's network namespace, as Kubernetes' own hack/local-up-cluster.sh
runs them. kubeadm makes the certificates and kubeconfigs (its `init phase` commands) and
nothing else: no static pods, so no control-plane images are needed.

Everything the node writes is under the cluster's run directory (`.run/cluster`)."""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devstack.gocmd import checked
from tools.cluster import network
from tools.cluster.daemons import Daemon

NODE_NAME = "todo-node"
CLUSTER_NAME = "todo-workflows"
API_PORT = 6443
PAUSE_IMAGE = "registry.k8s.io/pause:3.10.1"
CNI_BIN_DIR = Path("/usr/lib/cni")


@dataclass(frozen=True)
class Node:
    run_dir: Path
    bin_dir: Path

    # --- where things are ---------------------------------------------------------------------

    @property
    def pki(self) -> Path:
        return self.run_dir / "pki"

    @property
    def conf(self) -> Path:
        return self.run_dir / "conf"

    @property
    def containerd_socket(self) -> Path:
        return self.run_dir / "containerd" / "containerd.sock"

    @property
    def kubeconfig(self) -> Path:
        """The administrator's kubeconfig (what README and the tests use)."""
        return self.run_dir / "kubeconfig"

    def kubectl(self, *args: str, kubeconfig: Path | None = None) -> list[str]:
        return [str(self.bin_dir / "kubectl"), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args]

    def ctr(self, *args: str) -> list[str]:
        return ["ctr", f"--address={self.containerd_socket}", "--namespace=k8s.io", *args]

    # --- configuration ------------------------------------------------------------------------

    def write_configuration(self) -> None:
        """Certificates, kubeconfigs and every process's configuration file (kept when present:
        a second `up` reuses the cluster's identity)."""
        for directory in (self.pki, self.conf, self.run_dir / "cni"):
            directory.mkdir(parents=True, exist_ok=True)
        kubeadm_config = self.conf / "kubeadm.yaml"
        kubeadm_config.write_text(self._kubeadm_config())
        if not (self.pki / "ca.crt").exists():
            kubeadm = str(self.bin_dir / "kubeadm")
            for phase in (["certs", "all"], ["kubeconfig", "all", f"--kubeconfig-dir={self.conf}"]):
                checked(
                    f"kubeadm init phase {phase[0]}",
                    [kubeadm, "init", "phase", *phase, f"--config={kubeadm_config}"],
                )
            proxy = checked(
                "kubeadm kubeconfig user",
                [
                    kubeadm,
                    "kubeconfig",
                    "user",
                    "--client-name=system:kube-proxy",
                    f"--config={kubeadm_config}",
                ],
            )
            (self.conf / "kube-proxy.conf").write_text(proxy.stdout)
        (self.conf / "containerd.toml").write_text(self._containerd_config())
        (self.run_dir / "cni" / "10-pods.conflist").write_text(self._cni_config())
        (self.conf / "kubelet.yaml").write_text(self._kubelet_config())
        (self.conf / "kube-proxy.yaml").write_text(self._kube_proxy_config())
        # Pods with dnsPolicy Default get no outside resolver: nothing in the cluster asks one.
        (self.conf / "resolv.conf").write_text("")

    def _kubeadm_config(self) -> str:
        return f"""\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: {network.NODE_IP}
  bindPort: {API_PORT}
nodeRegistration:
  name: {NODE_NAME}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: {CLUSTER_NAME}
kubernetesVersion: {_version(self.bin_dir)}
certificatesDir: {self.pki}
networking:
  dnsDomain: cluster.local
  serviceSubnet: {network.SERVICE_CIDR}
  podSubnet: {network.CLUSTER_CIDR}
apiServer:
  certSANs: ["{network.NODE_IP}", "127.0.0.1", "{network.API_SERVICE_IP}"]
"""

    def _containerd_config(self) -> str:
        base = self.run_dir / "containerd"
        return f"""\
version = 2
root = "{base / "root"}"
state = "{base / "state"}"

[grpc]
  address = "{self.containerd_socket}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # Without CAP_SYS_RESOURCE (this machine's root lacks it) no process may lower its
  # oom_score_adj: pods get at least containerd's own instead of kubelet's -998.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{self.run_dir / "cni"}"
"""

    def _cni_config(self) -> str:
        bridge = {
            "type": "bridge",
            "bridge": "cni0",
            "isGateway": True,
            "hairpinMode": True,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": network.POD_CIDR}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": str(self.run_dir / "cni-ipam"),
            },
        }
        portmap = {"type": "portmap", "capabilities": {"portMappings": True}}
        return json.dumps(
            {"cniVersion": "0.4.0", "name": "todo-pods", "plugins": [bridge, portmap]}, indent=2
        )

    def _kubelet_config(self) -> str:
        return f"""\
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: {self.pki / "ca.crt"}}}
authorization: {{mode: Webhook}}
cgroupDriver: cgroupfs
# This machine has cgroup v1 only; kubelet 1.34 still runs on it when told to.
failCgroupV1: false
clusterDNS: ["{network.DNS_SERVICE_IP}"]
clusterDomain: cluster.local
containerRuntimeEndpoint: unix://{self.containerd_socket}
failSwapOn: false
podCIDR: {network.POD_CIDR}
resolvConf: {self.conf / "resolv.conf"}
serializeImagePulls: false
# A shared build machine's disk is often fuller than kubelet's defaults allow.
evictionHard: {{memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%}}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
"""

    def _kube_proxy_config(self) -> str:
        return f"""\
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {{kubeconfig: {self.conf / "kube-proxy.conf"}}}
mode: iptables
clusterCIDR: {network.CLUSTER_CIDR}
hostnameOverride: {NODE_NAME}
bindAddress: {network.NODE_IP}
# A pod reaching a Service backed by a pod on the same bridge gets its replies back
# through the node (no br_netfilter hairpin to rely on).
iptables: {{masqueradeAll: true}}
conntrack: {{maxPerCore: 0}}
"""

    # --- processes ----------------------------------------------------------------------------

    def daemons(self) -> list[Daemon]:
        """In start order (stopped in reverse)."""
        pki, conf, bin_dir = self.pki, self.conf, self.bin_dir

        def daemon(name: str, argv: list[str], ready: Callable[[], bool]) -> Daemon:
            return Daemon(name, network.inside(*argv), self.run_dir, ready)

        api = f"https://{network.NODE_IP}:{API_PORT}"
        return [
            daemon(
                "containerd",
                ["containerd", f"--config={conf / 'containerd.toml'}"],
                lambda: self.containerd_socket.exists() and _ok(self.ctr("version")),
            ),
            daemon(
                "etcd",
                [
                    str(bin_dir / "etcd"),
                    "--name=todo-node",
                    f"--data-dir={self.run_dir / 'etcd'}",
                    "--listen-client-urls=http://127.0.0.1:2379",
                    "--advertise-client-urls=http://127.0.0.1:2379",
                    "--listen-peer-urls=http://127.0.0.1:2380",
                    "--initial-advertise-peer-urls=http://127.0.0.1:2380",
                    "--initial-cluster=todo-node=http://127.0.0.1:2380",
                    "--listen-metrics-urls=http://127.0.0.1:2381",
                ],
                lambda: _ok(network.inside("curl", "-sf", "http://127.0.0.1:2381/health")),
            ),
            daemon(
                "kube-apiserver",
                [
                    str(bin_dir / "kube-apiserver"),
                    f"--advertise-address={network.NODE_IP}",
                    f"--secure-port={API_PORT}",
                    "--etcd-servers=http://127.0.0.1:2379",
                    f"--service-cluster-ip-range={network.SERVICE_CIDR}",
                    "--authorization-mode=Node,RBAC",
                    "--enable-admission-plugins=NodeRestriction",
                    "--allow-privileged=true",
                    f"--client-ca-file={pki / 'ca.crt'}",
                    f"--tls-cert-file={pki / 'apiserver.crt'}",
                    f"--tls-private-key-file={pki / 'apiserver.key'}",
                    f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
                    f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
                    "--kubelet-preferred-address-types=InternalIP",
                    f"--service-account-key-file={pki / 'sa.pub'}",
                    f"--service-account-signing-key-file={pki / 'sa.key'}",
                    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                    f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
                    "--requestheader-allowed-names=front-proxy-client",
                    "--requestheader-username-headers=X-Remote-User",
                    "--requestheader-group-headers=X-Remote-Group",
                    "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                    f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
                    f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
                    "--enable-aggregator-routing=true",
                ],
                lambda: self._api_ready(api),
            ),
            daemon(
                "kube-controller-manager",
                [
                    str(bin_dir / "kube-controller-manager"),
                    f"--kubeconfig={conf / 'controller-manager.conf'}",
                    f"--authentication-kubeconfig={conf / 'controller-manager.conf'}",
                    f"--authorization-kubeconfig={conf / 'controller-manager.conf'}",
                    "--bind-address=127.0.0.1",
                    f"--cluster-signing-cert-file={pki / 'ca.crt'}",
                    f"--cluster-signing-key-file={pki / 'ca.key'}",
                    f"--root-ca-file={pki / 'ca.crt'}",
                    f"--service-account-private-key-file={pki / 'sa.key'}",
                    f"--service-cluster-ip-range={network.SERVICE_CIDR}",
                    "--use-service-account-credentials=true",
                    "--leader-elect=false",
                ],
                lambda: _ok(network.inside("curl", "-sfk", "https://127.0.0.1:10257/healthz")),
            ),
            daemon(
                "kube-scheduler",
                [
                    str(bin_dir / "kube-scheduler"),
                    f"--kubeconfig={conf / 'scheduler.conf'}",
                    f"--authentication-kubeconfig={conf / 'scheduler.conf'}",
                    f"--authorization-kubeconfig={conf / 'scheduler.conf'}",
                    "--bind-address=127.0.0.1",
                    "--leader-elect=false",
                ],
                lambda: _ok(network.inside("curl", "-sfk", "https://127.0.0.1:10259/healthz")),
            ),
            daemon(
                "kubelet",
                [
                    str(bin_dir / "kubelet"),
                    f"--config={conf / 'kubelet.yaml'}",
                    f"--kubeconfig={conf / 'kubelet.conf'}",
                    f"--root-dir={self.run_dir / 'kubelet'}",
                    f"--cert-dir={self.run_dir / 'kubelet-pki'}",
                    f"--hostname-override={NODE_NAME}",
                    f"--node-ip={network.NODE_IP}",
                ],
                lambda: _ok(network.inside("curl", "-sf", "http://127.0.0.1:10248/healthz")),
            ),
            daemon(
                "kube-proxy",
                [str(bin_dir / "kube-proxy"), f"--config={conf / 'kube-proxy.yaml'}"],
                lambda: _ok(network.inside("curl", "-sf", f"http://{network.NODE_IP}:10256/healthz")),
            ),
        ]

    def _api_ready(self, api: str) -> bool:
        context = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        with urllib.request.urlopen(f"{api}/readyz", context=context, timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)

    def grant_admin(self) -> None:
        """kubeadm's admin.conf user is in the group kubeadm:cluster-admins, which `kubeadm init`
        would bind to cluster-admin: bind it (as the super-admin), then hand admin.conf out."""
        binding = self.kubectl(
            "create",
            "clusterrolebinding",
            "kubeadm:cluster-admins",
            "--clusterrole=cluster-admin",
            "--group=kubeadm:cluster-admins",
            "--dry-run=client",
            "-o",
            "yaml",
            kubeconfig=self.conf / "super-admin.conf",
        )
        manifest = checked("Rendering the admin binding", binding).stdout
        apply = self.kubectl("apply", "-f", "-", kubeconfig=self.conf / "super-admin.conf")
        checked("Binding the cluster administrators", apply, input=manifest)
        self.kubeconfig.write_text((self.conf / "admin.conf").read_text())
        self.kubeconfig.chmod(0o600)


def _version(bin_dir: Path) -> str:
    output = checked("kubeadm version", [str(bin_dir / "kubeadm"), "version", "-o", "short"])
    return output.stdout.strip()


def _ok(argv: list[str]) -> bool:
    return subprocess.run(argv, capture_output=True, check=False, timeout=10).returncode == 0
