"""Which version of this project's code a stack's apps and migrations run: this checkout, or the
tree of an earlier commit with a virtualenv of its own locked runtime dependencies, as the
upgrade tests need (an old deploy's code on the same data as today's).

An earlier commit's tree is `git archive`d, not a `git worktree`: a worktree is registered in one
clone's .git, and the copy lives in the tool cache, shared by every clone (CI clones afresh)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from devstack import progress, toolchain
from devstack.paths import REPO_ROOT, cache_dir
from devstack.process import StackError

# Written last: a copy without it was interrupted and is made again.
_READY = ".checkout-ready"


@dataclass(frozen=True)
class Checkout:
    root: Path
    python: str
    label: str

    @property
    def components(self) -> Path:
        return self.root / "components"


def current() -> Checkout:
    return Checkout(REPO_ROOT, sys.executable, "this checkout")


def of_commit(commit: str) -> Checkout:
    """The tree of `commit` under the tool cache, with its own .venv (`uv sync --frozen --no-dev`
    from its uv.lock), made once and reused."""
    full = _resolve(commit)
    root = cache_dir() / "checkouts" / full[:12]
    if not (root / _READY).exists():
        with progress.step(f"Checking out {full[:10]} with its locked dependencies into {root}"):
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            archive = subprocess.run(
                ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", full],
                capture_output=True,
                check=True,
            )
            subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
            _checked(
                [str(toolchain.uv()), "sync", "--frozen", "--no-dev", "--quiet"],
                cwd=root,
                env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(root / ".venv")},
            )
            (root / _READY).write_text(full + "\n")
    return Checkout(root, str(root / ".venv" / "bin" / "python"), f"commit {full[:10]}")


def _resolve(commit: str) -> str:
    """The full hash, fetching the commit once when this clone lacks it (a shallow CI clone)."""
    for attempt in range(2):
        found = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if found.returncode == 0:
            return found.stdout.strip()
        if attempt == 0:
            subprocess.run(
                ["git", "-C", str(REPO_ROOT), "fetch", "--quiet", "origin", commit],
                capture_output=True,
                check=False,
            )
    raise StackError(
        f"Commit {commit} is not in this clone's history and `git fetch origin {commit}` did not bring "
        "it: clone with full history (actions/checkout with fetch-depth: 0)."
    )


def _checked(command: list[str], *, cwd: Path, env: dict[str, str]) -> None:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackError(f"{' '.join(command[:2])} failed in {cwd}:\n{result.stderr[-3000:]}")
