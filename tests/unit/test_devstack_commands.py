"""The local stack's commands beside `up`: where they look for the stack
(TODO_RUN_DIR), and how `down` tells a stopped runner from a running one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devstack.__main__ import _alive
from devstack.paths import REPO_ROOT, default_run_dir

pytestmark = pytest.mark.unit


def test_the_run_dir_is_the_checkouts_unless_todo_run_dir_moves_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TODO_RUN_DIR", raising=False)
    assert default_run_dir() == REPO_ROOT / ".run"
    monkeypatch.setenv("TODO_RUN_DIR", str(tmp_path))
    assert default_run_dir() == tmp_path


def test_an_exited_runner_its_parent_has_not_reaped_is_not_alive() -> None:
    """`down` waits for the runner to go; a zombie (`up` started by a test or a
    supervisor that reaps late) has gone, though a signal still reaches its pid."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    stat = Path(f"/proc/{child.pid}/stat")
    deadline = time.monotonic() + 30
    while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.05)
    os.kill(child.pid, 0)  # the pid still answers
    try:
        assert _alive(child.pid) is False
    finally:
        child.wait()
    assert _alive(child.pid) is False
    assert _alive(os.getpid()) is True
