"""Running the built image the way the chart runs it: as the image's own user (never
`--user`), on a read-only root filesystem with an empty /tmp, without capabilities.

The containers share the host's network namespace so that they reach a PostgreSQL of this
machine on loopback, and they listen on loopback only. Nothing else is there for them: the Dapr ports
they are given are free ones (Dapr's defaults could be another stack's sidecar on this
machine), and SMTP stays at its loopback default.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from devstack.ports import free_port
from tools.delivery import image

# As the chart's containerSecurityContext: readOnlyRootFilesystem, an emptyDir at /tmp,
# capabilities dropped, no privilege escalation.
RESTRICTED = (
    "--read-only",
    "--tmpfs=/tmp",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
    "--network=host",
)


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(image.docker(*args), capture_output=True, text=True, timeout=timeout, check=False)


def get(port: int, path: str) -> httpx.Response | None:
    """The answer on loopback, or None while nothing answers."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2)
    except httpx.HTTPError:
        return None


def wait_for(what: str, condition: Callable[[], bool], seconds: float, logs: Callable[[], str]) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {seconds:.0f}s. Container log:\n{logs()}")
        time.sleep(0.5)


@dataclass
class Containers:
    """Runs the image; every container it started is removed at the end of the test."""

    image: str
    database_url: str
    names: list[str] = field(default_factory=list)

    def app_env(self, port: int) -> dict[str, str]:
        """What the chart gives a role: production settings with real secrets."""
        return {
            "TODO_ENV": "production",
            "TODO_DATABASE_URL": self.database_url,
            "TODO_JWT_SECRET": secrets.token_urlsafe(32),
            "TODO_APP_API_TOKEN": secrets.token_urlsafe(24),
            "DAPR_GRPC_PORT": str(free_port()),
            "DAPR_HTTP_PORT": str(free_port()),
            "PORT": str(port),
        }

    def _args(self, env: dict[str, str], options: tuple[str, ...], command: tuple[str, ...]) -> list[str]:
        name = f"todo-image-test-{uuid.uuid4().hex[:8]}"
        self.names.append(name)
        variables = [f"--env={key}={value}" for key, value in env.items()]
        return ["--name", name, *RESTRICTED, *variables, *options, self.image, *command]

    def run(self, *command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """A role or command to completion (`docker run --rm`)."""
        return docker("run", "--rm", *self._args(env or {}, (), command))

    def start(self, *command: str, env: dict[str, str], options: tuple[str, ...] = ()) -> str:
        """A role in the background; its container's name."""
        args = self._args(env, options, command)
        started = docker("run", "--detach", *args)
        assert started.returncode == 0, started.stderr
        return args[1]

    def serve(self, role: str, *options: str) -> tuple[str, int]:
        """A role on a free port of loopback (the entry point binds 0.0.0.0, with the host's
        network every interface; a later --host wins), once its /healthz answers 200."""
        port = free_port()
        name = self.start(role, "--host", "127.0.0.1", env=self.app_env(port), options=options)
        wait_for(
            f"{role} answering /healthz on {port}",
            lambda: getattr(get(port, "/healthz"), "status_code", None) == 200,
            90,
            lambda: self.logs(name),
        )
        return name, port

    def logs(self, name: str) -> str:
        out = docker("logs", "--tail", "40", name)
        return out.stdout + out.stderr

    def state(self, name: str) -> dict[str, Any]:
        out = docker("inspect", "--format", "{{json .State}}", name)
        assert out.returncode == 0, out.stderr
        state: dict[str, Any] = json.loads(out.stdout)
        return state

    def pid1_uid(self, name: str) -> str:
        """The real uid of the container's main process, as the kernel has it."""
        out = docker("exec", name, "cat", "/proc/1/status")
        assert out.returncode == 0, out.stderr
        return next(line.split()[1] for line in out.stdout.splitlines() if line.startswith("Uid:"))

    def remove_all(self) -> None:
        if self.names:
            docker("rm", "--force", "--volumes", *self.names)
