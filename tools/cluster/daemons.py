"""The cluster's processes: started detached (they outlive `./task cluster:up`, as services do),
each with a pid file and a log under the cluster's run directory, stopped by `cluster:down`."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devstack import progress


@dataclass(frozen=True)
class Daemon:
    name: str
    argv: list[str]
    run_dir: Path
    ready: Callable[[], bool]

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "pids" / f"{self.name}.pid"

    @property
    def log_path(self) -> Path:
        return self.run_dir / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        """The recorded pid while that process still runs, else None."""
        try:
            pid = int(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return pid if alive(pid) else None

    def start(self, timeout: float = 120.0) -> None:
        """Start it unless it runs, then wait until it is ready (or say why not)."""
        if self.pid() is None:
            for directory in (self.pid_file.parent, self.log_path.parent):
                directory.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("ab") as log:
                log.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {self.name}\n".encode())
                log.flush()
                process = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self.pid_file.write_text(str(process.pid))
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid() is None:
                raise SystemExit(
                    f"{self.name} exited while starting. Last lines of {self.log_path}:\n{self.tail()}"
                )
            with contextlib.suppress(Exception):
                if self.ready():
                    return
            time.sleep(0.25)
        raise SystemExit(
            f"{self.name} was not ready after {timeout:.0f}s. Last lines of {self.log_path}:\n{self.tail()}"
        )

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to its process group, SIGKILL past the timeout; the pid file goes."""
        pid = self.pid()
        if pid is not None:
            progress.say(f"    stopping {self.name} (pid {pid})")
            _signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            _signal_group(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def alive(pid: int) -> bool:
    """The process runs (a zombie has ended; it only waits for its parent to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
