"""The end-to-end tier drives the product as its users do: the stack comes from
`python -m devstack up` (what `./task up` runs) in a process of its own, tokens
from `devstack token` (`./task token`), email from `devstack mail`
(`./task mail`), workflows from `api.ops_cli` (`./task wf`). The stack gets
free ports and a run directory of its own (`--free-ports`, TODO_RUN_DIR), so
it runs beside a developer's `./task up`."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devstack.paths import REPO_ROOT

STARTUP_SECONDS = 300
STOP_SECONDS = 90
# The lines of `up`'s banner that say where things are, e.g.
# "  API          http://127.0.0.1:8000   (docs ...)".
BANNER_LINE = re.compile(r"^  (API|audit|Dapr HTTP|Kafka) {2,}(\S+)", re.MULTILINE)


@dataclass
class UpStack:
    """A running `devstack up` and what its banner printed."""

    profile: str
    process: subprocess.Popen[bytes]
    run_dir: Path
    output: Path
    urls: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "TODO_RUN_DIR": str(self.run_dir)}

    def printed(self) -> str:
        return self.output.read_text(errors="replace")

    def cli(self, module: str, *args: str, stderr: bool = False) -> str:
        """Run `python -m MODULE ARGS` against this stack; its stdout (and
        stderr, where the devstack commands say what they did)."""
        result = subprocess.run(
            [sys.executable, "-m", module, *args],
            env=self.env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"{module} {' '.join(args)}: {result.stderr}"
        return result.stdout + (result.stderr if stderr else "")

    def recorded_pids(self) -> dict[str, int]:
        """The processes `up` recorded in its state file (what `./task down` would stop)."""
        state = json.loads((self.run_dir / "stack.json").read_text())
        return {name: int(pid) for name, pid in state["processes"].items()}

    def interrupt(self) -> int:
        """Ctrl-C in the terminal: SIGINT to the whole foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=STOP_SECONDS)


def processes_of(run_dir: Path) -> dict[int, str]:
    """Every live process that inherited this stack's TODO_RUN_DIR (all of
    `up`'s descendants, whatever started them): pid -> command line."""
    marker = f"TODO_RUN_DIR={run_dir}".encode()
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker in (proc / "environ").read_bytes().split(b"\0"):
                found[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:160]
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return found


def _start(profile: str) -> UpStack:
    run_dir = Path(tempfile.mkdtemp(prefix="todo-e2e-"))
    run_dir.chmod(0o755)  # the embedded PostgreSQL's unprivileged user reads under it
    output = run_dir.parent / f"{run_dir.name}.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack", "up", "--profile", profile, "--free-ports"],
            env={**os.environ, "TODO_RUN_DIR": str(run_dir)},
            cwd=REPO_ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a shell job in a terminal
        )
    stack = UpStack(profile, process, run_dir, output)
    deadline = time.monotonic() + STARTUP_SECONDS
    while "The stack is up:" not in stack.printed():
        if process.poll() is not None or time.monotonic() > deadline:
            _clean_up(stack)
            pytest.fail(f"`devstack up --profile {profile}` did not come up:\n{stack.printed()[-4000:]}")
        time.sleep(0.5)
    stack.urls = dict(BANNER_LINE.findall(stack.printed()))
    return stack


def _clean_up(stack: UpStack) -> None:
    """What a test that stopped the stack leaves undone, whatever went wrong."""
    if stack.process.poll() is None:
        try:
            stack.interrupt()
        except subprocess.TimeoutExpired:
            os.killpg(stack.process.pid, signal.SIGKILL)
    for pid in processes_of(stack.run_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(stack.run_dir, ignore_errors=True)
    stack.output.unlink(missing_ok=True)


@pytest.fixture(
    scope="module",
    params=[pytest.param("default"), pytest.param("kafka", marks=pytest.mark.kafka)],
)
def up(request: pytest.FixtureRequest) -> Iterator[UpStack]:
    """`./task up` on free ports: the default profile (what a newcomer runs
    first) and `PROFILE=kafka` (the production shape: Kafka pub/sub)."""
    stack = _start(request.param)
    try:
        yield stack
    finally:
        _clean_up(stack)
