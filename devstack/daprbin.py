"""The Dapr runtime binaries (daprd, placement, scheduler) at the pinned version.

Found in $DAPR_BIN_DIR or ~/.dapr/bin (what `dapr init --slim` installs) when
they report the pinned version; otherwise built once from the Go module
github.com/dapr/dapr into the cache. `go install github.com/dapr/dapr/cmd/daprd@…`
is refused (dapr's go.mod has replace directives), so tools/dapr is a small
module of ours that requires dapr and repeats its replace directives.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import IO

from devstack import progress
from devstack.paths import REPO_ROOT, cache_dir

DAPR_VERSION = "1.18.3"
BINARIES = ("daprd", "placement", "scheduler")
GO_MODULE_DIR = REPO_ROOT / "tools" / "dapr"

# The Pulsar pub/sub registration in dapr v1.18.3 needs a forked Pulsar client
# and Avro library that the module proxy here refuses; the runtime is otherwise
# the stock `-tags stablecomponents` build, minus that one component.
_EXCLUDED_COMPONENT_FILES = ("cmd/daprd/components/pubsub_pulsar.go",)


def _reports_version(binary: Path) -> bool:
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=20, check=False
        )
    except OSError:
        return False
    return out.stdout.strip().splitlines()[:1] == [DAPR_VERSION]


def _complete_install(directory: Path) -> bool:
    return all((directory / name).is_file() for name in BINARIES) and all(
        _reports_version(directory / name) for name in ("daprd",)
    )


def build_dir() -> Path:
    return cache_dir() / f"dapr-{DAPR_VERSION}" / "bin"


def find() -> Path | None:
    """A directory holding all three binaries at the pinned version, if any."""
    candidates = []
    if os.environ.get("DAPR_BIN_DIR"):
        candidates.append(Path(os.environ["DAPR_BIN_DIR"]))
    candidates += [Path.home() / ".dapr" / "bin", build_dir()]
    for directory in candidates:
        if _complete_install(directory):
            return directory
    return None


def ensure() -> Path:
    found = find()
    if found is not None:
        return found
    if os.environ.get("DAPR_BIN_DIR"):
        progress.say(
            f"DAPR_BIN_DIR={os.environ['DAPR_BIN_DIR']} has no daprd/placement/scheduler "
            f"reporting {DAPR_VERSION}; building them instead."
        )
    build()
    return build_dir()


def _go(*args: str, env: dict[str, str] | None = None) -> str:
    if shutil.which("go") is None:
        raise SystemExit("Go is needed to build the Dapr runtime (go 1.26+ on PATH).")
    result = subprocess.run(
        ["go", *args],
        cwd=GO_MODULE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"`go {' '.join(args)}` failed:\n{result.stderr}{result.stdout}")
    return result.stdout


def _list_deps_downloading(flags: list[str], packages: list[str], env: dict[str, str]) -> list[str]:
    """`go list -deps`, which downloads the modules it needs; counts them aloud."""
    # stdout goes to a file: reading only stderr from two pipes would deadlock.
    with tempfile.TemporaryFile("w+") as listing:
        return _run_go_list(listing, flags, packages, env)


def _run_go_list(listing: IO[str], flags: list[str], packages: list[str], env: dict[str, str]) -> list[str]:
    proc = subprocess.Popen(
        ["go", "list", *flags, "-deps", *packages],
        cwd=GO_MODULE_DIR,
        env=env,
        stdout=listing,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    downloaded, other = 0, []
    for line in proc.stderr:
        if line.startswith("go: downloading"):
            downloaded += 1
            if downloaded % 100 == 0:
                progress.say(f"    downloaded {downloaded} modules")
        else:
            other.append(line.rstrip())
    if proc.wait() != 0:
        raise SystemExit("Resolving Dapr's packages failed:\n" + "\n".join(other[-40:]))
    if downloaded:
        progress.say(f"    downloaded {downloaded} modules")
    listing.seek(0)
    return listing.read().split()


def build() -> None:
    """Build the three binaries, showing download and compile progress."""
    out_dir = build_dir()
    work = out_dir.parent / "build"
    with progress.step(f"Building Dapr {DAPR_VERSION} from the Go module (first time only)"):
        progress.say("    downloading modules (about 4 GB of sources on a cold cache)...")
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"}
        dapr_dir = Path(
            json.loads(_go("mod", "download", "-json", f"github.com/dapr/dapr@v{DAPR_VERSION}"))["Dir"]
        )
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        source = work / "dapr"
        shutil.copytree(dapr_dir, source)
        for path in source.rglob("*"):
            path.chmod(path.stat().st_mode | 0o200)
        for relative in _EXCLUDED_COMPONENT_FILES:
            (source / relative).unlink()
        modfile = work / "go.mod"
        shutil.copy(GO_MODULE_DIR / "go.mod", modfile)
        shutil.copy(GO_MODULE_DIR / "go.sum", work / "go.sum")
        _go("mod", "edit", f"-modfile={modfile}", f"-replace=github.com/dapr/dapr={source}")

        packages = [f"github.com/dapr/dapr/cmd/{name}" for name in BINARIES]
        flags = [f"-modfile={modfile}", "-tags=stablecomponents"]
        deps = _list_deps_downloading(flags, packages, env)
        counter = progress.Counter("compiling packages", len(deps))
        ldflags = " ".join(
            [
                "-s -w",
                f"-X github.com/dapr/dapr/pkg/buildinfo.version={DAPR_VERSION}",
                f"-X github.com/dapr/dapr/pkg/buildinfo.gitversion=v{DAPR_VERSION}",
                f"-X github.com/dapr/kit/logger.DaprVersion={DAPR_VERSION}",
            ]
        )
        staging = work / "out"
        staging.mkdir()
        # `go build -v` names each package as it compiles it: that is our progress.
        proc = subprocess.Popen(
            ["go", "build", "-v", *flags, f"-ldflags={ldflags}", "-o", str(staging), *packages],
            cwd=GO_MODULE_DIR,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        errors: list[str] = []
        for line in proc.stderr:
            if line.startswith(("#", " ", "\t")) or ".go:" in line:
                errors.append(line.rstrip())
            else:
                counter.advance()
        counter.finish()
        if proc.wait() != 0:
            raise SystemExit("Building Dapr failed:\n" + "\n".join(errors[-40:]))
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in BINARIES:
            os.replace(staging / name, out_dir / name)
        shutil.rmtree(work)
        progress.say(f"    installed {', '.join(BINARIES)} into {out_dir}")
