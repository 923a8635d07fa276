"""Images the cluster runs, built here (nothing is pulled: no registry is reachable) with Debian's
docker.io and loaded into the node's containerd under the names the manifests use, so every
pod's image is present (imagePullPolicy IfNotPresent or Never finds it)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from devstack import progress
from devstack.gocmd import checked
from tools.cluster.node import Node
from tools.delivery.image import DOCKER, image_exists

COREDNS_IMAGE = "registry.k8s.io/coredns/coredns:v1.12.1"
DAPR_REGISTRY = "ghcr.io/dapr"
# The user Dapr's images run as (distroless' nonroot), as the chart's securityContext expects.
NONROOT = "65532:65532"


@dataclass(frozen=True)
class Image:
    """An image made of a few files on scratch: `files` maps a path in the image to its source."""

    name: str
    files: dict[str, Path]
    entrypoint: str
    user: str = "0:0"

    def build(self) -> None:
        if image_exists(self.name):
            return
        with tempfile.TemporaryDirectory() as context, progress.step(f"Building the image {self.name}"):
            lines = ["FROM scratch"]
            for target, source in self.files.items():
                shutil.copy(source, Path(context) / source.name)
                lines.append(f"COPY {source.name} {target}")
            lines += [f"USER {self.user}", f'ENTRYPOINT ["{self.entrypoint}"]']
            (Path(context) / "Dockerfile").write_text("\n".join(lines) + "\n")
            checked(f"docker build {self.name}", [DOCKER, "build", "-q", "-t", self.name, context])


def dapr_images(version: str, *bin_dirs: Path) -> list[Image]:
    """Dapr's images as its chart names them (<registry>/<name>:<tag>), each one binary at /."""
    binaries = {path.name: path for bin_dir in bin_dirs for path in bin_dir.iterdir()}
    names = ("daprd", "placement", "scheduler", "operator", "injector", "sentry")
    return [
        Image(f"{DAPR_REGISTRY}/{name}:{version}", {f"/{name}": binaries[name]}, f"/{name}", NONROOT)
        for name in names
    ]


def load(node: Node, names: list[str], refresh: tuple[str, ...] = ()) -> None:
    """Import the images into the node's containerd: those it lacks, and those in `refresh`
    (a tag like todo-workflows:dev names a new image after every build)."""
    present = set(checked("Listing the node's images", node.ctr("images", "list", "-q")).stdout.split())
    for name in names:
        if qualified(name) in present and name not in refresh:
            continue
        with progress.step(f"Loading {name} into the node"):
            save = subprocess.Popen([DOCKER, "save", name], stdout=subprocess.PIPE)
            imported = subprocess.run(
                node.ctr("images", "import", "-"),
                stdin=save.stdout,
                capture_output=True,
                text=True,
                check=False,
            )
            save.wait()
            if save.returncode != 0 or imported.returncode != 0:
                raise SystemExit(f"loading {name} failed:\n{imported.stderr[-2000:]}")


def qualified(image: str) -> str:
    """The name containerd keeps an image under: Docker Hub's implied for a bare name."""
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"docker.io/{image}" if "/" in image else f"docker.io/library/{image}"
