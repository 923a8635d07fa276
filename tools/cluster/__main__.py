"""`python -m tools.cluster up|down|status` (`./task cluster:up`, `cluster:down`, `cluster:status`).

A single-node Kubernetes cluster of real processes on this machine: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kubelet and kube-proxy built from the k8s.io/kubernetes
module, on Debian's containerd, every process in the network namespace `todo-cluster` (no route
off the machine). The kubeconfig is `.run/cluster/kubeconfig`. What is missing is built first and
cached under ~/.cache/todo-workflows; `down` leaves no process, mount or network behind.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from devstack import progress, toolchain
from devstack.apt import apt_install
from devstack.paths import default_run_dir
from tools.cluster import app, dependencies, dry_run, images, network, platform
from tools.cluster.node import PAUSE_IMAGE, Node
from tools.delivery import image as app_image
from tools.delivery.image import ensure_engine


def run_dir() -> Path:
    return default_run_dir() / "cluster"


def node() -> Node:
    return Node(run_dir(), toolchain.ensure(toolchain.KUBERNETES))


# kubelet's cgroup of every pod (cgroupfs driver, cgroup v1).
KUBEPODS_CGROUP = Path("/sys/fs/cgroup/pids/kubepods")
# What the node needs from Debian, by a file each package installs.
PACKAGES = {
    "/usr/bin/containerd": "containerd",
    "/usr/sbin/runc": "runc",
    "/usr/lib/cni/bridge": "containernetworking-plugins",
    "/usr/sbin/iptables": "iptables",
    "/usr/sbin/conntrack": "conntrack",
    # pause is C, compiled static.
    "/usr/bin/gcc": "gcc",
    "/usr/include/stdio.h": "libc6-dev",
}


def up() -> int:
    started = time.monotonic()
    apt_install([package for path, package in PACKAGES.items() if not Path(path).exists()])
    cluster = node()
    _refuse_another_cluster(cluster)
    ensure_engine()
    cluster_images = [
        images.Image(PAUSE_IMAGE, {"/pause": cluster.bin_dir / "pause"}, "/pause", user="65535:65535"),
        images.Image(images.COREDNS_IMAGE, {"/coredns": toolchain.ensure(toolchain.COREDNS)}, "/coredns"),
        *images.dapr_images(
            toolchain.DAPR_VERSION,
            toolchain.ensure(toolchain.DAPR),
            toolchain.ensure(toolchain.DAPR_KUBERNETES),
        ),
    ]
    for image in cluster_images:
        image.build()
    base = app_image.ensure_base()
    dependency_images = dependencies.build_images(base)
    app_image.build(base, app_image.IMAGE)
    node_images = [*(image.name for image in cluster_images), *dependency_images.values(), app_image.IMAGE]
    with progress.step("Creating the network namespace todo-cluster"):
        network.create()
    cluster.write_configuration()
    for daemon in cluster.daemons():
        with progress.step(f"Starting {daemon.name}"):
            daemon.start()
        if daemon.name == "containerd":
            images.load(cluster, node_images, refresh=(app_image.IMAGE,))
        if daemon.name == "kube-apiserver":
            cluster.grant_admin()
    with progress.step("Waiting for the node to be Ready"):
        platform.kubectl(cluster, "wait", "--for=condition=Ready", "node", "--all", "--timeout=180s")
    platform.deploy_coredns(cluster)
    platform.deploy_storage(cluster)
    platform.install_dapr(cluster)
    dependencies.deploy(cluster, dependency_images)
    app.install(cluster)
    app.forward_api(cluster)
    progress.say(f"Cluster up in {time.monotonic() - started:.0f}s. kubeconfig: {cluster.kubeconfig}")
    return status()


def down() -> int:
    directory = run_dir()
    if not directory.exists():
        if network.processes():
            raise SystemExit(
                f"The cluster in the network namespace {network.NETNS} was not started from this "
                "checkout: `./task cluster:down` where it was started."
            )
        network.delete()
        progress.say("No cluster here.")
        return 0
    cluster = node()
    with progress.step("Stopping the cluster"):
        app.forwarder(cluster).stop()
        daemons = cluster.daemons()
        # kubelet first, or it starts again the pods removed below.
        node_agents = [daemon for daemon in daemons if daemon.name in ("kubelet", "kube-proxy")]
        for daemon in node_agents:
            daemon.stop()
        if daemons[0].pid() is not None:
            # The pods, through the runtime as kubelet would: CNI releases their addresses and
            # namespaces, and their shims exit.
            crictl = toolchain.ensure(toolchain.CRICTL)
            endpoint = f"unix://{cluster.containerd_socket}"
            subprocess.run(
                network.inside(str(crictl), f"--runtime-endpoint={endpoint}", "rmp", "--all", "--force"),
                capture_output=True,
                check=False,
            )
        for daemon in reversed(daemons):
            daemon.stop()
        _kill_leftover_shims(cluster)
        _kill_leftover_pods()
        _unmount_under(directory)
        network.delete()
    shutil.rmtree(directory, ignore_errors=True)
    progress.say("Cluster down: no process, mount or network left.")
    return 0


def status() -> int:
    directory = run_dir()
    if not directory.exists():
        print("No cluster (./task cluster:up starts one).")
        return 1
    cluster = node()
    for daemon in cluster.daemons():
        pid = daemon.pid()
        print(
            f"{daemon.name:<24} {'running, pid ' + str(pid) if pid else 'stopped':<22} log {daemon.log_path}"
        )
    print(f"\nnode {network.NODE_IP} (network namespace {network.NETNS}); kubeconfig {cluster.kubeconfig}")
    print(
        f"the API: {app.API_URL} (api-forwarder: {'running' if app.forwarder(cluster).pid() else 'stopped'})"
    )
    if any(daemon.name == "kube-apiserver" and daemon.pid() for daemon in cluster.daemons()):
        subprocess.run(cluster.kubectl("get", "pods", "-A", "-o", "wide"), check=False)
    return 0


def _refuse_another_cluster(cluster: Node) -> None:
    """One cluster per machine (its network namespace and addresses are fixed): one that another
    checkout started (processes in the namespace, none of them ours) is stopped there first."""
    if any(daemon.pid() is not None for daemon in cluster.daemons()):
        return
    theirs = network.processes()
    if theirs:
        raise SystemExit(
            f"Another cluster runs in the network namespace {network.NETNS} (pids "
            f"{', '.join(map(str, theirs[:5]))}), not from this checkout: `./task cluster:down` "
            "where it was started first."
        )


def _kill_leftover_shims(cluster: Node) -> None:
    """Shims outlive containerd by design; any still serving this node's containerd go too."""
    address = str(cluster.containerd_socket)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and address.encode() in argv:
            progress.say(f"    killing a leftover shim, pid {proc.name}")
            os.kill(int(proc.name), 9)


def _kill_leftover_pods() -> None:
    """Anything still in kubelet's pod cgroups (a container whose shim was killed)."""
    for procs in KUBEPODS_CGROUP.rglob("cgroup.procs"):
        for pid in procs.read_text().split():
            progress.say(f"    killing a leftover pod process, pid {pid}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), 9)


def _unmount_under(directory: Path) -> None:
    """What kubelet and containerd mounted under the run directory, deepest first."""
    prefix = str(directory.resolve()) + "/"
    mounts = [
        line.split()[4].replace("\\040", " ")
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
    ]
    for mount in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.cluster", description=__doc__.split("\n\n")[1])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="build what is missing, start the cluster, wait until it is Ready")
    sub.add_parser("down", help="stop every cluster process; remove its mounts, network and state")
    sub.add_parser("status", help="the cluster's processes and pods")
    judged = sub.add_parser(
        "dry-run", help="apply each cloud environment's values with --dry-run=server on the running cluster"
    )
    judged.add_argument(
        "environments", nargs="*", metavar="ENV", help=f"of {', '.join(dry_run.ENVIRONMENTS)} (default: all)"
    )
    args = parser.parse_args(argv)
    if args.command == "dry-run":
        unknown = set(args.environments) - set(dry_run.ENVIRONMENTS)
        if unknown:
            parser.error(
                f"no values file for {', '.join(sorted(unknown))}: ENV is one of {dry_run.ENVIRONMENTS}"
            )
        # run_dir() first: node() would build Kubernetes on a new machine only to find none.
        cluster = node() if run_dir().exists() else None
        if cluster is None or any(daemon.pid() is None for daemon in cluster.daemons()):
            raise SystemExit("No cluster runs here: ./task cluster:up first.")
        return dry_run.dry_run(cluster, args.environments or list(dry_run.ENVIRONMENTS))
    return {"up": up, "down": down, "status": status}[args.command]()


if __name__ == "__main__":
    sys.exit(main())
