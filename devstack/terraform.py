"""The `terraform` binary for the IaC checks (`terraform fmt`, and `validate` where providers are reachable).

A `terraform` on PATH is used when it is 1.5 or newer (every module here needs 1.5: `check`
blocks, `optional()` attributes). Otherwise Terraform is built once from its Go module into
the cache. `go install github.com/hashicorp/terraform@v1.9.0` and later are refused: their
go.mod has replace directives (the remote-state backends became nested modules). 1.8.5 is
the newest release the module proxy serves whose go.mod has none, so it is the pinned build.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from devstack import progress
from devstack.paths import cache_dir
from devstack.tools import go_install

TERRAFORM_VERSION = "1.8.5"
MINIMUM_VERSION = (1, 5)
GO_PACKAGE = "github.com/hashicorp/terraform"
# Release builds set dev=no; without it the binary calls itself "1.8.5-dev".
_LDFLAGS = "-s -w -X github.com/hashicorp/terraform/version.dev=no"
_VERSION_LINE = re.compile(r"^Terraform v(\d+)\.(\d+)\.(\d+)")


def build_dir() -> Path:
    return cache_dir() / f"terraform-{TERRAFORM_VERSION}" / "bin"


def version_of(binary: Path | str) -> tuple[int, int, int] | None:
    """(major, minor, patch) that `binary version` reports, or None if it does not run."""
    try:
        out = subprocess.run(
            [str(binary), "version"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            # A missing ~/.terraformrc named by TF_CLI_CONFIG_FILE only adds a warning banner.
            env={**os.environ, "CHECKPOINT_DISABLE": "1"},
        )
    except OSError:
        return None
    match = _VERSION_LINE.match(out.stdout)
    if match is None:
        return None
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def find() -> Path | None:
    """A usable terraform: $TERRAFORM, then PATH (1.5+), then an earlier build in the cache."""
    candidates: list[Path] = []
    if os.environ.get("TERRAFORM"):
        candidates.append(Path(os.environ["TERRAFORM"]))
    on_path = shutil.which("terraform")
    if on_path:
        candidates.append(Path(on_path))
    candidates.append(build_dir() / "terraform")
    for candidate in candidates:
        version = version_of(candidate)
        if version is not None and version[:2] >= MINIMUM_VERSION:
            return candidate
    return None


def ensure() -> Path:
    found = find()
    if found is not None:
        return found
    build()
    return build_dir() / "terraform"


def build() -> None:
    """`go install` the pinned release into the cache, with progress."""
    if shutil.which("go") is None:
        raise SystemExit(
            f"No terraform {'.'.join(map(str, MINIMUM_VERSION))}+ on PATH, and Go is needed to build "
            f"Terraform {TERRAFORM_VERSION} from its module (go 1.22+ on PATH)."
        )
    with progress.step(f"Building Terraform {TERRAFORM_VERSION} from the Go module (first time only)"):
        progress.say("    downloading a few hundred modules, then compiling about 1,250 packages...")
        binary = go_install(GO_PACKAGE, f"v{TERRAFORM_VERSION}", build_dir() / "terraform", ldflags=_LDFLAGS)
        progress.say(f"    installed {binary}")
