"""Every tool the stack and the delivery checks run, found or installed once: `ensure(tool)`.

An install outside the cache that passes the tool's check comes first (daprd in $DAPR_BIN_DIR
or ~/.dapr/bin, a terraform 1.5+ on PATH); otherwise the pinned version is installed into
`<cache>/<name>-<version>/` and used from then on. Versions come from tools/versions.toml; a
Python tool is pinned by its hashed lock instead, whose digest names its directory (a new
lock, a new install).

Each install fills `<name>-<version>.partial/` and renames it into place once it has finished,
so a directory under its final name is always whole and an interrupted install starts over.

`python -m devstack.toolchain ensure NAME...` installs tools and prints where they are;
`python -m devstack.toolchain lock` re-resolves the Python tools' locks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from devstack import progress
from devstack.gocmd import checked, say_every_250, stream_go
from devstack.kubernetes_build import build_kubernetes, kubernetes_usable
from devstack.operator_crds import build_operator_crds, operator_crds_usable
from devstack.paths import REPO_ROOT, cache_dir

TOOLS_DIR = REPO_ROOT / "tools"
VERSIONS: dict[str, str] = tomllib.loads((TOOLS_DIR / "versions.toml").read_text())
# What an install needs on PATH, as a refusal names it.
_REQUIREMENTS = {
    "gcc": "a C compiler",
    "go": "Go 1.26+",
    "java": "Java 17+",
    "mvn": "Maven",
    "node": "Node.js 20+",
    "npm": "npm",
}


def _no_other_install() -> list[Path]:
    return []


@dataclass(frozen=True)
class Tool:
    """One tool: how to install it, where else it may already be, and what counts as usable.

    `install` fills an empty staging directory, and `entry` is what ensure() returns inside the
    tool's directory (a binary, bin/, libs/). `version` names the directory; a tool pinned by a
    `lock` is named by the lock's digest instead. `needs` are the commands the install runs;
    `instead` is what the refusal offers when they are missing: what to provide in its place.
    """

    name: str
    # The install as its progress line says it: "Fetching Kafka 4.4.0 jars from Maven Central".
    title: str
    install: Callable[[Path], None] = field(repr=False)
    entry: str
    needs: tuple[str, ...] = ()
    version: str | None = None
    lock: Path | None = None
    elsewhere: Callable[[], list[Path]] = field(default=_no_other_install, repr=False)
    instead: str = ""
    usable: Callable[[Path], bool] = field(default=Path.exists, repr=False)

    @property
    def home(self) -> Path:
        """`<cache>/<name>-<version>`, or `<cache>/<name>-<digest of the lock>`."""
        if self.version:
            return cache_dir() / f"{self.name}-{self.version}"
        assert self.lock is not None, f"{self.name} has neither a version nor a lock"
        return cache_dir() / f"{self.name}-{hashlib.sha256(self.lock.read_bytes()).hexdigest()[:12]}"


def find(tool: Tool) -> Path | None:
    """The tool from an install outside the cache that passes its check, else from the cache."""
    for candidate in [*tool.elsewhere(), tool.home / tool.entry]:
        if tool.usable(candidate):
            return candidate
    return None


def ensure(tool: Tool) -> Path:
    """The tool's path (`entry` of its directory), installing it first if nothing usable is there."""
    found = find(tool)
    if found is not None:
        return found
    _require(tool.title, tool.needs, tool.instead)
    home = tool.home
    staging = home.with_name(home.name + ".partial")
    with progress.step(f"{tool.title} into {home} (first time only)"):
        for passed_over in tool.elsewhere():
            if passed_over.exists():
                progress.say(f"    passed over {passed_over}: not the version needed")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            tool.install(staging)
        except BaseException:
            # Half an install is of no use to the next attempt (Dapr's is gigabytes of sources).
            shutil.rmtree(staging, ignore_errors=True)
            raise
        shutil.rmtree(home, ignore_errors=True)
        os.replace(staging, home)
    installed = home / tool.entry
    if not tool.usable(installed):
        raise SystemExit(f"{tool.title} finished, but {installed} does not pass its check.")
    return installed


def _require(title: str, commands: tuple[str, ...], instead: str = "") -> None:
    missing = [command for command in commands if shutil.which(command) is None]
    if missing:
        names = " and ".join(dict.fromkeys(_REQUIREMENTS[command] for command in missing))
        alternative = f" Or provide {instead}." if instead else ""
        raise SystemExit(f"{title} needs {names} ({', '.join(missing)} on PATH).{alternative}")


# --- Go: `go install`, and the Dapr runtime's own build ------------------------------------------


def _go_install(package: str, version: str, staging: Path, *, ldflags: str = "", note: str = "") -> None:
    """`go install package@version` with its binary in staging/bin."""
    if note:
        progress.say(f"    {note}")
    env = {**os.environ, "GOBIN": str(staging / "bin"), "CGO_ENABLED": "0"}
    flags = [f"-ldflags={ldflags}"] if ldflags else []
    downloaded, compiled = stream_go(
        f"Installing {package}",
        ["install", "-v", *flags, f"{package}@{version}"],
        env=env,
        on_compiled=say_every_250,
    )
    progress.say(f"    {downloaded} modules downloaded, {compiled} packages compiled")


def _go_tool(name: str, package: str) -> Tool:
    """A tool the module proxy serves as it is: `go install package@version`."""
    version = VERSIONS[name]
    return Tool(
        name,
        f"Installing {name} {version} from the Go module proxy",
        partial(_go_install, package, version),
        entry=f"bin/{Path(package).name}",
        needs=("go",),
        version=version,
    )


DAPR_VERSION = VERSIONS["dapr"]
DAPR_BINARIES = ("daprd", "placement", "scheduler")
# `go install github.com/dapr/dapr/cmd/daprd@…` is refused (dapr's go.mod has replace directives):
# this small module requires dapr and repeats them.
DAPR_MODULE = TOOLS_DIR / "dapr"
# The Pulsar pub/sub registration in dapr v1.18.3 needs a forked Pulsar client and Avro library
# that the module proxy here refuses; the runtime is otherwise the stock `-tags stablecomponents`
# build, minus that one component.
_DAPR_EXCLUDED_FILES = ("cmd/daprd/components/pubsub_pulsar.go",)


def dapr_source() -> Path:
    """github.com/dapr/dapr's source at the pinned version, from the Go module cache: what the
    runtime is built from, and what the chart check reads Dapr's CRDs and annotations from."""
    module = f"github.com/dapr/dapr@v{DAPR_VERSION}"
    _require(f"Fetching the Dapr module {module}", ("go",))
    result = checked(f"Fetching the Dapr module {module}", ["go", "mod", "download", "-json", module])
    return Path(json.loads(result.stdout)["Dir"])


def _build_dapr(binaries: tuple[str, ...], staging: Path) -> None:
    """Dapr's commands into staging/bin, from a writable copy of dapr's source (minus the
    excluded files) that our module's go.mod replaces dapr with."""
    progress.say("    downloading modules (about 4 GB of sources on a cold cache)...")
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"}
    work = staging / "work"
    source = work / "dapr"
    shutil.copytree(dapr_source(), source)
    for path in source.rglob("*"):
        path.chmod(path.stat().st_mode | 0o200)
    for relative in _DAPR_EXCLUDED_FILES:
        (source / relative).unlink()
    modfile = work / "go.mod"
    shutil.copy(DAPR_MODULE / "go.mod", modfile)
    shutil.copy(DAPR_MODULE / "go.sum", work / "go.sum")
    replace = f"-replace=github.com/dapr/dapr={source}"
    checked(
        "Pointing the module at the copy",
        ["go", "mod", "edit", f"-modfile={modfile}", replace],
        cwd=DAPR_MODULE,
    )

    packages = [f"github.com/dapr/dapr/cmd/{name}" for name in binaries]
    flags = [f"-modfile={modfile}", "-tags=stablecomponents"]
    # The packages to compile, to count them; stdout to a file, as reading stderr from a pipe
    # while stdout fills another would deadlock.
    with tempfile.TemporaryFile("w+") as listing:
        stream_go(
            "Resolving Dapr's packages",
            ["list", *flags, "-deps", *packages],
            env=env,
            cwd=DAPR_MODULE,
            stdout=listing,
        )
        listing.seek(0)
        counter = progress.Counter("compiling packages", len(listing.read().split()))
    ldflags = " ".join(
        [
            "-s -w",
            f"-X github.com/dapr/dapr/pkg/buildinfo.version={DAPR_VERSION}",
            f"-X github.com/dapr/dapr/pkg/buildinfo.gitversion=v{DAPR_VERSION}",
            f"-X github.com/dapr/kit/logger.DaprVersion={DAPR_VERSION}",
        ]
    )
    (staging / "bin").mkdir()
    build = ["build", "-v", *flags, f"-ldflags={ldflags}", "-o", str(staging / "bin"), *packages]
    stream_go("Building Dapr", build, env=env, cwd=DAPR_MODULE, on_compiled=lambda _: counter.advance())
    counter.finish()
    shutil.rmtree(work)


def _dapr_elsewhere() -> list[Path]:
    explicit = os.environ.get("DAPR_BIN_DIR")
    return [*([Path(explicit)] if explicit else []), Path.home() / ".dapr" / "bin"]


def _dapr_usable(directory: Path) -> bool:
    """All three binaries, and daprd reporting the pinned version."""
    if not all((directory / name).is_file() for name in DAPR_BINARIES):
        return False
    try:
        out = subprocess.run(
            [str(directory / "daprd"), "--version"], capture_output=True, text=True, timeout=20, check=False
        )
    except OSError:
        return False
    return out.stdout.strip().splitlines()[:1] == [DAPR_VERSION]


TERRAFORM_MINIMUM = (1, 5)  # every module in iac/ needs it: `check` blocks, optional() attributes
_TERRAFORM_VERSION_LINE = re.compile(r"^Terraform v(\d+)\.(\d+)\.(\d+)")


def terraform_version(binary: Path) -> tuple[int, int, int] | None:
    """(major, minor, patch) that `binary version` reports, or None if it does not run."""
    try:
        out = subprocess.run(
            [str(binary), "version"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "CHECKPOINT_DISABLE": "1"},
        )
    except OSError:
        return None
    match = _TERRAFORM_VERSION_LINE.match(out.stdout)
    if match is None:
        return None
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def _terraform_usable(binary: Path) -> bool:
    version = terraform_version(binary)
    return version is not None and version[:2] >= TERRAFORM_MINIMUM


def _terraform_elsewhere() -> list[Path]:
    found = [os.environ.get("TERRAFORM"), shutil.which("terraform")]
    return [Path(path) for path in found if path]


# --- Python tools (hashed locks, a virtualenv each), npm packages, Maven jars --------------------


def uv() -> Path:
    """The uv that ./task installs first (at the version tools/versions.toml names)."""
    binary = cache_dir() / f"uv-{VERSIONS['uv']}" / "bin" / "uv"
    if not binary.is_file():
        raise SystemExit(f"uv {VERSIONS['uv']} is missing from {binary.parent}: run this through ./task.")
    return binary


def _python_venv(lock: Path, staging: Path) -> None:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_LINK_MODE": "copy"}
    # Relocatable: it is built under .partial and renamed, and its scripts must still find python.
    checked(
        "Creating the virtualenv",
        [str(uv()), "venv", "--quiet", "--relocatable", "--python", "python3", str(staging)],
        env=env,
    )
    python = str(staging / "bin" / "python")
    result = checked(
        f"Installing {lock.relative_to(REPO_ROOT)}",
        [str(uv()), "pip", "sync", "--require-hashes", "--python", python, str(lock)],
        env=env,
    )
    summary = [line for line in result.stderr.splitlines() if line.startswith("Installed")]
    progress.say("    " + (summary[-1] if summary else "installed"))


def _python_tool(name: str, lock: Path, entry: str) -> Tool:
    """A Python tool in a virtualenv of its own: the tools pin libraries (checkov: boto3,
    packaging<24, networkx<2.7 and some ninety more) the app's environment need not agree with."""
    return Tool(
        name,
        f"Installing {name} from {lock.relative_to(REPO_ROOT)}",
        partial(_python_venv, lock),
        entry=entry,
        lock=lock,
    )


def _npm_ci(package_dir: Path, staging: Path) -> None:
    for name in ("package.json", "package-lock.json"):
        shutil.copy(package_dir / name, staging)
    result = checked("npm ci", ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=staging)
    progress.say("    " + (result.stdout.strip().splitlines() or ["installed"])[-1])


def _maven_jars(pom: Path, version: str, staging: Path) -> None:
    """The pom's dependencies and all of theirs, as jars in staging/libs."""
    libs = staging / "libs"
    checked(
        "Fetching Kafka with Maven",
        [
            "mvn",
            "--batch-mode",
            "--no-transfer-progress",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-Dkafka.version={version}",
            f"-DoutputDirectory={libs}",
            "-DincludeScope=runtime",
        ],
    )
    progress.say(f"    {len(list(libs.glob('*.jar')))} jars")


DAPR = Tool(
    "dapr",
    f"Building Dapr {DAPR_VERSION} from the Go module",
    partial(_build_dapr, DAPR_BINARIES),
    entry="bin",
    needs=("go",),
    version=DAPR_VERSION,
    elsewhere=_dapr_elsewhere,
    instead=f"daprd, placement and scheduler {DAPR_VERSION} in $DAPR_BIN_DIR or ~/.dapr/bin",
    usable=_dapr_usable,
)
# What Dapr's Helm chart runs beside the sidecar, placement and scheduler (tools/cluster).
DAPR_KUBERNETES_BINARIES = ("operator", "injector", "sentry")
DAPR_KUBERNETES = Tool(
    "dapr-kubernetes",
    f"Building Dapr {DAPR_VERSION}'s operator, sidecar injector and sentry from the Go module",
    partial(_build_dapr, DAPR_KUBERNETES_BINARIES),
    entry="bin",
    needs=("go",),
    version=DAPR_VERSION,
    usable=lambda bin_dir: all((bin_dir / name).is_file() for name in DAPR_KUBERNETES_BINARIES),
)
TERRAFORM = Tool(
    "terraform",
    f"Building Terraform {VERSIONS['terraform']} from the Go module",
    partial(
        _go_install,
        "github.com/hashicorp/terraform",
        f"v{VERSIONS['terraform']}",
        # Release builds set dev=no; without it the binary calls itself "1.8.5-dev".
        ldflags="-s -w -X github.com/hashicorp/terraform/version.dev=no",
        note="downloading a few hundred modules, then compiling about 1,250 packages...",
    ),
    entry="bin/terraform",
    needs=("go",),
    version=VERSIONS["terraform"],
    elsewhere=_terraform_elsewhere,
    instead=f"a terraform {'.'.join(map(str, TERRAFORM_MINIMUM))}+ on PATH or in $TERRAFORM",
    usable=_terraform_usable,
)
KUBERNETES_VERSION = VERSIONS["kubernetes"]
KUBERNETES = Tool(
    "kubernetes",
    f"Building Kubernetes {KUBERNETES_VERSION} and etcd from the Go module",
    partial(build_kubernetes, KUBERNETES_VERSION),
    entry="bin",
    needs=("go", "gcc"),
    version=KUBERNETES_VERSION,
    usable=kubernetes_usable,
)
OPERATOR_CRDS = Tool(
    "operator-crds",
    f"Making the CRDs of Strimzi {VERSIONS['strimzi']} and the Prometheus Operator "
    f"{VERSIONS['prometheus-operator']}",
    partial(build_operator_crds, VERSIONS["strimzi"], VERSIONS["prometheus-operator"]),
    entry="crds",
    needs=("java", "mvn", "go"),
    version=f"{VERSIONS['strimzi']}-{VERSIONS['prometheus-operator']}",
    usable=operator_crds_usable,
)
COREDNS = _go_tool("coredns", "github.com/coredns/coredns")
CRICTL = _go_tool("crictl", "sigs.k8s.io/cri-tools/cmd/crictl")
HELM = _go_tool("helm", "helm.sh/helm/v3/cmd/helm")
ACTIONLINT = _go_tool("actionlint", "github.com/rhysd/actionlint/cmd/actionlint")
# Parses the alert rules and every dashboard query (tests/chart/test_promql.py).
PROMTOOL = _go_tool("promtool", "github.com/prometheus/prometheus/cmd/promtool")
CHECKOV = _python_tool("checkov", TOOLS_DIR / "checkov" / "requirements.txt", "bin/checkov")
# kubernetes-validate, hadolint and shellcheck: bin/ holds all three.
CHART_LINTERS = _python_tool("chart-linters", TOOLS_DIR / "chart" / "requirements.txt", "bin")
_CRD_MODELS_DIR = TOOLS_DIR / "chart" / "crd-models"
# The schemas of the Strimzi and Prometheus Operator CRDs (tools/chart/validate-crds.mjs).
CRD_MODELS = Tool(
    "crd-models",
    "Installing the Strimzi and Prometheus Operator schemas from npm",
    partial(_npm_ci, _CRD_MODELS_DIR),
    entry="node_modules",
    needs=("node", "npm"),
    lock=_CRD_MODELS_DIR / "package-lock.json",
)
_MCP_CLIENT_DIR = TOOLS_DIR / "mcp-client"
# The TypeScript MCP SDK, a second real client of the MCP server (tests/integration/ts_client).
MCP_CLIENT = Tool(
    "mcp-client",
    "Installing the TypeScript MCP SDK from npm",
    partial(_npm_ci, _MCP_CLIENT_DIR),
    entry="node_modules",
    needs=("node", "npm"),
    lock=_MCP_CLIENT_DIR / "package-lock.json",
)
KAFKA = Tool(
    "kafka",
    f"Fetching Kafka {VERSIONS['kafka']} jars from Maven Central",
    partial(_maven_jars, TOOLS_DIR / "kafka" / "pom.xml", VERSIONS["kafka"]),
    entry="libs",
    needs=("java", "mvn"),
    version=VERSIONS["kafka"],
)
TOOLS = {
    tool.name: tool
    for tool in (
        DAPR,
        DAPR_KUBERNETES,
        TERRAFORM,
        HELM,
        ACTIONLINT,
        PROMTOOL,
        CHECKOV,
        CHART_LINTERS,
        CRD_MODELS,
        KAFKA,
        KUBERNETES,
        COREDNS,
        CRICTL,
        OPERATOR_CRDS,
    )
}


def lock() -> None:
    """Re-resolve each Python tool's requirements.in into its hashed requirements.txt."""
    # Run from the lock's directory: the command is recorded in the lock's header.
    compile_ = ["pip", "compile", "--quiet", "--python-version", "3.11", "--generate-hashes"]
    for tool in (CHECKOV, CHART_LINTERS):
        assert tool.lock is not None
        with progress.step(f"Resolving {tool.lock.relative_to(REPO_ROOT)}"):
            command = [str(uv()), *compile_, "requirements.in", "-o", tool.lock.name]
            checked("uv pip compile", command, cwd=tool.lock.parent)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.toolchain", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    install = sub.add_parser("ensure", help="find or install tools; print each one's path")
    install.add_argument(
        "names", nargs="+", choices=sorted(TOOLS), metavar="NAME", help=", ".join(sorted(TOOLS))
    )
    sub.add_parser("lock", help="re-resolve the Python tools' locks (tools/*/requirements.txt)")
    args = parser.parse_args(argv)
    if args.command == "lock":
        lock()
    else:
        for name in args.names:
            print(ensure(TOOLS[name]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
