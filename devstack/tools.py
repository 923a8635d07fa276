"""Delivery tools for the chart and CI checks, installed once into the cache.

Go tools (helm, actionlint, promtool) come from the Go module proxy with `go install`;
the Python tools (kubernetes-validate, checkov, hadolint, shellcheck) live in a
virtualenv of their own, built by uv from the hashed lock
tools/chart/requirements.txt: checkov pins libraries that the app's
environment should not have to agree with. Each install shows progress and is
reused until its version (or the lock) changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack import progress
from devstack.paths import REPO_ROOT, cache_dir

UV_VERSION = "0.13.9"
PY_LOCK = REPO_ROOT / "tools" / "chart" / "requirements.txt"
DAPR_VERSION = "1.18.3"


@dataclass(frozen=True)
class GoTool:
    name: str
    package: str
    version: str

    @property
    def binary(self) -> Path:
        return cache_dir() / f"{self.name}-{self.version}" / "bin" / self.name


HELM = GoTool("helm", "helm.sh/helm/v3/cmd/helm", "v3.22.0")
ACTIONLINT = GoTool("actionlint", "github.com/rhysd/actionlint/cmd/actionlint", "v1.7.12")
# Prometheus' rule checker (module v0.316.0 is Prometheus 3.x): parses the alert rules and every
# dashboard query (tests/chart/test_promql.py).
PROMTOOL = GoTool("promtool", "github.com/prometheus/prometheus/cmd/promtool", "v0.316.0")


def _checked(what: str, args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; on failure stop with what failed and its output's tail."""
    result = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        raise SystemExit(f"{what} failed:\n{(result.stderr + result.stdout)[-4000:]}")
    return result


def _need_go() -> None:
    if shutil.which("go") is None:
        raise SystemExit("Go 1.26+ is needed to install the chart tools (go on PATH).")


def go_install(package: str, version: str, binary: Path, *, ldflags: str | None = None) -> Path:
    """`go install package@version`, its binary moved to `binary` once built;
    the downloads and the packages compiled are the progress shown."""
    _need_go()
    staging = binary.parent.with_name(binary.parent.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    env = {**os.environ, "GOBIN": str(staging), "CGO_ENABLED": "0"}
    command = ["go", "install", "-v", *([f"-ldflags={ldflags}"] if ldflags else []), f"{package}@{version}"]
    # `-v` names each package as it compiles: that, and the downloads, are the progress.
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    downloaded = compiled = 0
    errors: list[str] = []
    for line in proc.stderr:
        if line.startswith("go: downloading"):
            downloaded += 1
            if downloaded % 50 == 0:
                progress.say(f"    downloaded {downloaded} modules")
        elif line.startswith(("#", " ", "\t", "go: ")) or ".go:" in line:
            errors.append(line.rstrip())
        else:
            compiled += 1
            if compiled % 250 == 0:
                progress.say(f"    compiled {compiled} packages")
    if proc.wait() != 0:
        raise SystemExit(f"`go install {package}@{version}` failed:\n" + "\n".join(errors[-40:]))
    progress.say(f"    {downloaded} modules downloaded, {compiled} packages compiled")
    binary.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging / Path(package).name, binary)
    shutil.rmtree(staging)
    return binary


def ensure_go_tool(tool: GoTool) -> Path:
    """`go install package@version` into the cache, unless already there."""
    if tool.binary.is_file():
        return tool.binary
    with progress.step(f"Installing {tool.name} {tool.version} from the Go module proxy (first time only)"):
        return go_install(tool.package, tool.version, tool.binary)


def python_tools_dir() -> Path:
    """The virtualenv for the lock's current content (a new lock, a new venv)."""
    digest = hashlib.sha256(PY_LOCK.read_bytes()).hexdigest()[:12]
    return cache_dir() / f"chart-pytools-{digest}"


def ensure_python_tools() -> Path:
    """The bin/ directory holding kubernetes-validate, checkov, hadolint, shellcheck."""
    venv = python_tools_dir()
    bin_dir = venv / "bin"
    stamp = venv / ".complete"
    if stamp.exists():
        return bin_dir
    uv = cache_dir() / f"uv-{UV_VERSION}" / "bin" / "uv"
    if not uv.is_file():
        raise SystemExit(f"uv {UV_VERSION} is missing from {uv.parent}; run the checks through ./task.")
    with progress.step(f"Installing the chart's Python tools into {venv} (first time only)"):
        if venv.exists():
            shutil.rmtree(venv)
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_LINK_MODE": "copy"}
        _checked(
            "Creating the tools' virtualenv",
            [str(uv), "venv", "--quiet", "--python", "python3", str(venv)],
            env=env,
        )
        python = str(bin_dir / "python")
        result = _checked(
            "Installing the chart's Python tools",
            [str(uv), "pip", "install", "--require-hashes", "--python", python, "-r", str(PY_LOCK)],
            env=env,
        )
        summary = [line for line in result.stderr.splitlines() if line.startswith("Installed")]
        progress.say("    " + (summary[-1] if summary else "installed"))
        stamp.touch()
    return bin_dir


def dapr_module_dir() -> Path:
    """The source of the Dapr module the runtime is built from (its CRDs, its injector)."""
    _need_go()
    module = f"github.com/dapr/dapr@v{DAPR_VERSION}"
    result = _checked(f"Fetching the Dapr module {module}", ["go", "mod", "download", "-json", module])
    return Path(json.loads(result.stdout)["Dir"])


CRD_MODELS_DIR = REPO_ROOT / "tools" / "chart" / "crd-models"


def ensure_crd_models() -> Path:
    """The npm packages with the schemas of the Strimzi and Prometheus Operator CRDs,
    from the committed package-lock."""
    lock = CRD_MODELS_DIR / "package-lock.json"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:12]
    prefix = cache_dir() / f"crd-models-{digest}"
    stamp = prefix / ".complete"
    if stamp.exists():
        return prefix
    if shutil.which("npm") is None or shutil.which("node") is None:
        raise SystemExit(
            "Node.js and npm are needed to validate the Strimzi and Prometheus Operator resources "
            "(node, npm on PATH)."
        )
    with progress.step("Installing the Strimzi and Prometheus Operator schemas from npm (first time only)"):
        if prefix.exists():
            shutil.rmtree(prefix)
        prefix.mkdir(parents=True)
        shutil.copy(CRD_MODELS_DIR / "package.json", prefix)
        shutil.copy(lock, prefix)
        result = _checked(
            "npm ci of the CRD schemas",
            ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=prefix,
        )
        progress.say("    " + (result.stdout.strip().splitlines() or ["installed"])[-1])
        stamp.touch()
    return prefix


def main(argv: list[str] | None = None) -> int:
    """`python -m devstack.tools helm|actionlint [ARGS...]`: run a tool, installing it first."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in ("helm", "actionlint"):
        print("usage: python -m devstack.tools helm|actionlint [ARGS...]", file=sys.stderr)
        return 64
    if args[0] == "helm":
        command = [str(ensure_go_tool(HELM)), *args[1:]]
    else:
        # actionlint checks every `run:` script with shellcheck when it is given one.
        shellcheck = ensure_python_tools() / "shellcheck"
        command = [str(ensure_go_tool(ACTIONLINT)), "-shellcheck", str(shellcheck), *args[1:]]
    return subprocess.run(command, cwd=REPO_ROOT, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
