"""`python -m tools.delivery.image` (`./task image`): the app's image, built on this machine.

No image registry is reachable here, so nothing is pulled. The base is a Debian bookworm
minbase that debootstrap makes from the apt mirror this machine already uses: python3,
python3-venv and ca-certificates, plus the machine's own CA certificates (the build's pip and
uv reach PyPI through whatever TLS-inspecting proxy the machine trusts). It is imported with
`docker import` and the Dockerfile is built on it with `--build-arg BASE_IMAGE=…` by Debian's
docker.io, whose classic builder needs no BuildKit frontend from Docker Hub.

What is missing comes first: docker.io and debootstrap from apt, then dockerd (left running,
like the service it is; its log is <cache>/dockerd/dockerd.log). The base is kept as the image
todo-workflows-base:<key> and as a tarball in <cache>/debian-base-<key>, the key being a
digest of everything it is made from, so a new mirror, package list or CA bundle makes a new
one. `--base IMAGE` builds on an image already present instead (python:3.11-slim-bookworm
where a registry is reachable).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from devstack import progress
from devstack.apt import apt_install, as_root
from devstack.paths import REPO_ROOT, cache_dir, default_run_dir

IMAGE = "todo-workflows:dev"
# Debian's docker.io (20.10, with its classic builder), not another client earlier on PATH.
DOCKER = "/usr/bin/docker"
# The release python:3.11-slim-bookworm is made from: Python 3.11 at /usr/bin/python3.
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
BASE_REPOSITORY = "todo-workflows-base"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
APT_DIR = Path("/etc/apt")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def _run(what: str, args: list[str], **kwargs: Any) -> str:
    """Run a command; on failure stop with what failed and the tail of its output."""
    result = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        raise SystemExit(f"{what} failed (`{' '.join(args)}`):\n{(result.stderr + result.stdout)[-4000:]}")
    return result.stdout


def _ok(*args: str) -> bool:
    return subprocess.run(args, capture_output=True, check=False).returncode == 0


def docker(*args: str) -> list[str]:
    return [DOCKER, *args]


# --- the engine ---------------------------------------------------------------------------


def ensure_engine() -> None:
    """A docker.io client that an engine answers, starting dockerd when none does."""
    if Path(DOCKER).exists() and _ok(*docker("info")):
        return
    apt_install(["docker.io"] if not Path(DOCKER).exists() or shutil.which("dockerd") is None else [])
    if _ok(*docker("info")):
        return
    log_dir = cache_dir() / "dockerd"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "dockerd.log"
    with progress.step(f"Starting dockerd (it keeps running; log {log_path})"), log_path.open("ab") as log:
        # Its own session: Ctrl-C on this command must not stop the engine other builds use.
        daemon = subprocess.Popen(
            as_root("dockerd"), stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while not _ok(*docker("info")):
            if daemon.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace").splitlines()[-20:]
                raise SystemExit("dockerd did not come up:\n" + "\n".join(tail))
            time.sleep(0.5)


def image_exists(name: str) -> bool:
    return _ok(*docker("image", "inspect", name))


# --- the offline base ---------------------------------------------------------------------


def _sources(apt: Path) -> Iterator[tuple[list[str], list[str], list[str], list[str]]]:
    """(types, URIs, suites, components) of every apt source, one-line and deb822 alike."""
    one_line = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]
    for path in one_line:
        for line in path.read_text().splitlines() if path.exists() else []:
            words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(words) >= 3:
                yield [words[0]], [words[1]], [words[2]], words[3:]
    for path in sorted((apt / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields = dict(
                (key.strip().lower(), value.split())
                for key, _, value in (line.partition(":") for line in stanza.splitlines())
                if value and not key.startswith(("#", " "))
            )
            yield (
                fields.get("types", []),
                fields.get("uris", []),
                fields.get("suites", []),
                fields.get("components", []),
            )


def apt_mirror(apt: Path = APT_DIR) -> str:
    """The Debian mirror apt uses here for the base's suite: what the machine is allowed to
    reach, and a snapshot pinned there pins the base too. Elsewhere (an Ubuntu CI runner)
    Debian's own."""
    for types, uris, suites, components in _sources(apt):
        if "deb" in types and SUITE in suites and "main" in components and uris:
            return uris[0].rstrip("/")
    return DEFAULT_MIRROR


def machine_only_certificates(machine_bundle: str, base_bundle: str) -> list[str]:
    """The PEM certificates of the machine's bundle that the base's lacks (however wrapped)."""
    known = {"".join(pem.split()) for pem in _PEM.findall(base_bundle)}
    return [pem for pem in _PEM.findall(machine_bundle) if "".join(pem.split()) not in known]


def base_key(mirror: str, ca_bundle: Path = HOST_CA_BUNDLE) -> str:
    """A digest of what the base is made from: a change to any of them makes a new base."""
    inputs = {
        "suite": SUITE,
        "variant": "minbase",
        "packages": BASE_PACKAGES,
        "mirror": mirror,
        "path": BASE_PATH,
        "cas": hashlib.sha256(ca_bundle.read_bytes()).hexdigest() if ca_bundle.exists() else None,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:12]


def _debootstrap(rootfs: Path, mirror: str) -> None:
    """debootstrap, printing the first line of each phase (retrieving, extracting,
    unpacking, configuring) instead of one or two per package."""
    args = as_root(
        "debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", SUITE, str(rootfs), mirror
    )
    lines: list[str] = []
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        phases: set[str] = set()
        for line in proc.stdout:
            lines.append(line.rstrip())
            words = line.split()
            if len(words) >= 2 and words[0] == "I:" and words[1] not in phases:
                phases.add(words[1])
                progress.say(f"    {line.strip()[3:]}")
    if proc.returncode != 0:
        raise SystemExit(f"debootstrap failed (`{' '.join(args)}`):\n" + "\n".join(lines[-30:]))


def _add_machine_cas(rootfs: Path) -> int:
    """Trust in the base what this machine trusts beyond Debian's roots (a proxy's CA), through
    update-ca-certificates so the base's bundle stays the package's own plus these."""
    if not HOST_CA_BUNDLE.exists():
        return 0
    base_bundle = (rootfs / HOST_CA_BUNDLE.relative_to("/")).read_text()
    extra = machine_only_certificates(HOST_CA_BUNDLE.read_text(), base_bundle)
    for pem in extra:
        name = f"machine-{hashlib.sha256(pem.encode()).hexdigest()[:12]}.crt"
        target = rootfs / "usr/local/share/ca-certificates" / name
        _run("Adding a CA certificate", as_root("tee", str(target)), input=pem + "\n")
    if extra:
        _run("update-ca-certificates", as_root("chroot", str(rootfs), "update-ca-certificates"))
    return len(extra)


def make_base_tarball(home: Path, mirror: str) -> Path:
    """<home>/rootfs.tar, made in <home>.partial and renamed into place once whole."""
    staging = home.with_name(home.name + ".partial")
    rootfs = staging / "rootfs"
    _run("Clearing a half-made base", as_root("rm", "-rf", str(staging)))
    staging.mkdir(parents=True)
    # The keyring is Debian's own; a Debian-based machine without it (Ubuntu) installs it.
    missing = {
        "debootstrap": shutil.which("debootstrap") is None,
        "debian-archive-keyring": not Path("/usr/share/keyrings/debian-archive-keyring.gpg").exists(),
    }
    apt_install([package for package, absent in missing.items() if absent])
    with progress.step(f"debootstrap {SUITE} (minbase, {' '.join(BASE_PACKAGES)}) from {mirror}"):
        _debootstrap(rootfs, mirror)
    added = _add_machine_cas(rootfs)
    progress.say(f"    {added} CA certificate(s) of this machine added to Debian's")
    # Package caches are of no use in an image that never runs apt.
    root = shlex.quote(str(rootfs))
    _run(
        "Emptying apt's caches",
        as_root("sh", "-c", f"rm -rf {root}/var/cache/apt/* {root}/var/lib/apt/lists/*"),
    )
    _run(
        "Packing the root filesystem",
        as_root("tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(staging / "rootfs.tar"), "."),
    )
    _run("Removing the unpacked root filesystem", as_root("rm", "-rf", str(rootfs)))
    _run("Clearing the previous base", as_root("rm", "-rf", str(home)))
    os.replace(staging, home)
    return home / "rootfs.tar"


def _forget_other_bases(key: str) -> None:
    """Older bases (another mirror, package list or CA bundle): their tarballs and images."""
    for stale in cache_dir().glob("debian-base-*"):
        if stale.name != f"debian-base-{key}":
            _run(f"Removing {stale}", as_root("rm", "-rf", str(stale)))
    tags = _run(
        "Listing bases", docker("image", "ls", BASE_REPOSITORY, "--format", "{{.Repository}}:{{.Tag}}")
    )
    for tag in tags.split():
        if tag != f"{BASE_REPOSITORY}:{key}":
            # An image still in use by a container stays; the next run tries again.
            subprocess.run(docker("image", "rm", tag), capture_output=True, check=False)


def ensure_base() -> str:
    """The offline base's image name, made (or imported from its tarball) when missing."""
    mirror = apt_mirror()
    key = base_key(mirror)
    name = f"{BASE_REPOSITORY}:{key}"
    if image_exists(name):
        progress.say(f"==> Base {name} is there ({SUITE} from {mirror})")
        return name
    home = cache_dir() / f"debian-base-{key}"
    tarball = home / "rootfs.tar"
    if not tarball.exists():
        tarball = make_base_tarball(home, mirror)
    with progress.step(f"Importing {tarball} as {name}"):
        changes = [f"ENV PATH={BASE_PATH}", "ENV LANG=C.UTF-8", 'CMD ["python3"]']
        _run("docker import", docker("import", *(f"--change={c}" for c in changes), str(tarball), name))
    _forget_other_bases(key)
    return name


# --- the image ----------------------------------------------------------------------------


def build(base: str, tag: str) -> None:
    """docker build with the classic builder; its steps as progress lines, the whole output in
    .run/image/build.log."""
    log_path = default_run_dir() / "image" / "build.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    args = docker("build", "--build-arg", f"BASE_IMAGE={base}", "--tag", tag, str(REPO_ROOT))
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    with progress.step(f"Building {tag} on {base} (log {log_path})"), log_path.open("w") as log:
        with subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                if line.startswith("Step "):
                    progress.say(f"    {line.rstrip()[:110]}")
        if proc.returncode != 0:
            log.flush()
            tail = log_path.read_text(errors="replace").splitlines()[-30:]
            raise SystemExit(f"docker build failed (exit {proc.returncode}):\n" + "\n".join(tail))


def describe(tag: str) -> str:
    info = json.loads(_run("docker image inspect", docker("image", "inspect", tag)))[0]
    config = info["Config"]
    return (
        f"{tag}: {info['Id'][7:19]}, {info['Size'] / 1e6:.0f} MB, user {config['User']}, "
        f"entrypoint {' '.join(config['Entrypoint'])} (roles api, audit, migrate)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.delivery.image",
        description="Build the app's image here: Debian's docker.io, on a Debian base made offline.",
    )
    parser.add_argument("--tag", default=IMAGE, help=f"the image to build (default: {IMAGE})")
    parser.add_argument(
        "--base",
        metavar="IMAGE",
        help="build on this image, already present, instead of the offline Debian base "
        "(e.g. python:3.11-slim-bookworm where a registry is reachable)",
    )
    args = parser.parse_args(argv)
    ensure_engine()
    if args.base and not image_exists(args.base):
        raise SystemExit(f"No image {args.base} here (nothing is pulled): `docker pull` it first.")
    build(args.base or ensure_base(), args.tag)
    print(describe(args.tag))
    return 0


if __name__ == "__main__":
    sys.exit(main())
