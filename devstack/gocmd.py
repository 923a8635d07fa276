"""Running the go command (and others) for the tools' builds: failures that say what failed,
and progress while go downloads and compiles (on a cold cache that takes minutes, and silence
looks stuck)."""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from devstack import progress


def checked(what: str, args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; on failure stop with what failed and its output's tail."""
    result = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        raise SystemExit(f"{what} failed:\n{(result.stderr + result.stdout)[-4000:]}")
    return result


def is_diagnostic(line: str) -> bool:
    """A line of go's stderr that is a message (an error, a warning), not a package's name."""
    return line.startswith(("#", " ", "\t", "go: ")) or ".go:" in line


def stream_go(
    what: str,
    args: list[str],
    *,
    env: dict[str, str],
    cwd: Path | None = None,
    stdout: IO[str] | None = None,
    on_compiled: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Run a go command, showing the modules it downloads (and, given on_compiled, the packages
    `-v` names as it compiles them): on a cold cache these take minutes, and silence looks stuck.
    Returns (modules downloaded, packages compiled)."""
    proc = subprocess.Popen(["go", *args], cwd=cwd, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    downloaded = compiled = 0
    messages: list[str] = []
    for line in proc.stderr:
        if line.startswith("go: downloading"):
            downloaded += 1
            if downloaded % 100 == 0:
                progress.say(f"    downloaded {downloaded} modules")
        elif on_compiled is not None and not is_diagnostic(line):
            compiled += 1
            on_compiled(compiled)
        else:
            messages.append(line.rstrip())
    if proc.wait() != 0:
        raise SystemExit(f"{what} failed (`go {shlex.join(args)}`):\n" + "\n".join(messages[-40:]))
    return downloaded, compiled


def say_every_250(compiled: int) -> None:
    if compiled % 250 == 0:
        progress.say(f"    compiled {compiled} packages")


def module_dir(module: str) -> Path:
    result = checked(f"Fetching the module {module}", ["go", "mod", "download", "-json", module])
    return Path(json.loads(result.stdout)["Dir"])
