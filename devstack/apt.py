"""Debian packages the tools need (docker.io, debootstrap, haproxy), installed with apt when missing."""

from __future__ import annotations

import os
import subprocess

from devstack import progress


def as_root(*args: str) -> list[str]:
    """The command as root: as it is when we are root, else through sudo without a prompt
    (a CI runner's passwordless sudo; there is no terminal to ask for a password on)."""
    return list(args) if os.geteuid() == 0 else ["sudo", "--non-interactive", *args]


def _run(what: str, args: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        raise SystemExit(f"{what} failed (`{' '.join(args)}`):\n{(result.stderr + result.stdout)[-4000:]}")


def apt_install(packages: list[str]) -> None:
    if not packages:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with progress.step(f"Installing {', '.join(packages)} from Debian (apt, first time only)"):
        _run("apt-get update", as_root("apt-get", "update", "-q"), env)
        _run(
            "apt-get install",
            as_root("apt-get", "install", "-y", "-q", "--no-install-recommends", *packages),
            env,
        )
