"""`python -m tools.delivery.ci [ARGS...]` (`./task ci:lint`): actionlint over .github/workflows,
with shellcheck over every `run:` script."""

from __future__ import annotations

import subprocess
import sys

from devstack import toolchain
from devstack.paths import REPO_ROOT


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # actionlint checks every `run:` script with shellcheck when it is given one.
    shellcheck = toolchain.ensure(toolchain.CHART_LINTERS) / "shellcheck"
    actionlint = toolchain.ensure(toolchain.ACTIONLINT)
    return subprocess.run(
        [str(actionlint), "-shellcheck", str(shellcheck), *args], cwd=REPO_ROOT, check=False
    ).returncode


if __name__ == "__main__":
    sys.exit(main())
