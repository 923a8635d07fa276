"""Supervised child processes: logs to files, readiness probes, clean stops.

Each child runs in its own session (so a terminal Ctrl-C reaches only the
runner, which then stops everything in order) and gets SIGTERM from the kernel
if the runner dies (PR_SET_PDEATHSIG), so nothing outlives the stack.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx

_PR_SET_PDEATHSIG = 1


class StackError(RuntimeError):
    """A process of the stack failed; the message names it and quotes its log."""


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log yet)"
    return "\n".join(text.splitlines()[-lines:])


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """A readiness probe: the URL answers 2xx."""
    try:
        return httpx.get(url, timeout=timeout).is_success
    except httpx.HTTPError:
        return False


class ManagedProcess:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        ready: Callable[[], bool],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        describe: str = "",
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.ready = ready
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self.stop_signal = stop_signal
        self.describe = describe
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> None:
        if self.running():
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {self.name}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                # Drop root's groups too: with gid 0 the group bits of a root-owned
                # directory would apply instead of the "other" bits.
                user=self.user,
                group=self.user,
                extra_groups=[] if self.user else None,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen is not None and self.popen.poll() is not None:
                raise StackError(
                    f"{self.name} exited with code {self.popen.returncode} while starting.\n"
                    f"Last lines of {self.log_path}:\n{tail(self.log_path)}"
                )
            try:
                if self.ready():
                    return
            except Exception:  # noqa: BLE001, S110 - a probe error means "not ready yet"
                pass
            time.sleep(0.1)
        raise StackError(
            f"{self.name} was not ready after {timeout:.0f}s.\n"
            f"Last lines of {self.log_path}:\n{tail(self.log_path)}"
        )

    def stop(self, timeout: float = 15.0) -> None:
        """Graceful stop of the whole process group, escalating to SIGKILL."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self._signal_group(self.stop_signal)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.popen.wait(5)
        self._reap_group()

    def kill(self) -> None:
        """SIGKILL, as a crash would: used by the fault-injection tests."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self._signal_group(signal.SIGKILL)
        self.popen.wait(10)
        self._reap_group()

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self.popen is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def _reap_group(self) -> None:
        """Children of the process that ignored their parent's end (postgres
        backends, JVM helpers) still carry the group id: finish them too."""
        assert self.popen is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
