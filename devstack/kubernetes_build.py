"""Kubernetes from the k8s.io/kubernetes module: its commands, the etcd it pins, and pause, for
the cluster of `./task cluster:up` (tools/cluster)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from devstack import progress
from devstack.gocmd import checked, module_dir, stream_go

KUBERNETES_COMMANDS = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "kubectl",
    "kubeadm",
)
# The etcd server kube-apiserver is tested against, at the version kubernetes' go.mod pins.
ETCD_PACKAGE = "go.etcd.io/etcd/server/v3"
# Kubernetes' pause at the version kubelet v1.34 expects as the sandbox image.
PAUSE_VERSION = "v3.10.1"
# Staging modules the build does not need that the module proxy does not serve.
_UNPUBLISHED_STAGING = ("k8s.io/sample-cli-plugin", "k8s.io/sample-controller")
_STAGING_REPLACE = re.compile(r"^\s*(k8s\.io/[\w.-]+) => \./staging/src/\1\s*$", re.MULTILINE)


def build_kubernetes(version: str, staging: Path) -> None:
    """The Kubernetes commands and etcd into staging/bin. The module's zip leaves out its nested
    staging modules (k8s.io/api, client-go, …) that its go.mod replaces with ./staging/src; the
    proxy serves each as v0.<minor>.<patch>, and a writable copy of the source gets them back."""
    source = staging / "work" / "kubernetes"
    shutil.copytree(module_dir(f"k8s.io/kubernetes@{version}"), source)
    published = "v0." + version.split(".", 1)[1]
    replaced = _STAGING_REPLACE.findall((source / "go.mod").read_text())
    progress.say(f"    fetching {len(replaced)} staging modules at {published}...")
    for module in replaced:
        if module not in _UNPUBLISHED_STAGING:
            shutil.copytree(module_dir(f"{module}@{published}"), source / "staging" / "src" / module)
    for path in source.rglob("*"):
        path.chmod(path.stat().st_mode | 0o200)
    for workspace in ("go.work", "go.work.sum"):
        (source / workspace).unlink(missing_ok=True)
    major, minor = version.removeprefix("v").split(".")[:2]
    stamp = [
        f"-X {package}.{name}={value}"
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for name, value in (
            ("gitVersion", version),
            ("gitMajor", major),
            ("gitMinor", minor),
            ("gitTreeState", "clean"),
            ("buildDate", "1970-01-01T00:00:00Z"),
        )
    ]
    ldflags = " ".join(["-s -w", *stamp])
    env = {**os.environ, "CGO_ENABLED": "0", "GOWORK": "off", "GOFLAGS": "-mod=mod"}
    packages = [f"./cmd/{name}" for name in KUBERNETES_COMMANDS]
    with tempfile.TemporaryFile("w+") as listing:
        stream_go(
            "Resolving Kubernetes' packages",
            ["list", "-deps", *packages, ETCD_PACKAGE],
            env=env,
            cwd=source,
            stdout=listing,
        )
        listing.seek(0)
        counter = progress.Counter("compiling packages", len(listing.read().split()))
    bin_dir = staging / "bin"
    bin_dir.mkdir()
    for args in (
        ["-o", str(bin_dir), *packages],
        ["-o", str(bin_dir / "etcd"), ETCD_PACKAGE],
    ):
        build = ["build", "-v", f"-ldflags={ldflags}", *args]
        stream_go("Building Kubernetes", build, env=env, cwd=source, on_compiled=lambda _: counter.advance())
    counter.finish()
    # The pod sandbox's process, as build/pause/Makefile compiles it.
    pause = [
        "gcc",
        "-Os",
        "-Wall",
        "-Werror",
        "-static",
        f"-DVERSION={PAUSE_VERSION}",
        "-o",
        str(bin_dir / "pause"),
    ]
    checked("Compiling pause", [*pause, str(source / "build" / "pause" / "linux" / "pause.c")])
    shutil.rmtree(staging / "work")


def kubernetes_usable(bin_dir: Path) -> bool:
    return all((bin_dir / name).is_file() for name in (*KUBERNETES_COMMANDS, "etcd", "pause"))
