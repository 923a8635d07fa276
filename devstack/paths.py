"""Where things live: the repository, the download/build cache and run dirs."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPONENTS_DIR = REPO_ROOT / "components"


def cache_dir() -> Path:
    """Downloads and builds shared by every checkout (outside the repository)."""
    explicit = os.environ.get("TODO_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "todo-workflows"


def default_run_dir() -> Path:
    """State of `./task up`: data directories, logs and the pid file.
    TODO_RUN_DIR moves it, for a second stack beside the first (with `up
    --free-ports`); `down`, `status`, `mail` and `wf` follow the same variable."""
    explicit = os.environ.get("TODO_RUN_DIR")
    return Path(explicit) if explicit else REPO_ROOT / ".run"
