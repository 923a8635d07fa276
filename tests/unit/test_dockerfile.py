"""The container image's shape (no Docker engine here: the Dockerfile is read, and the
entry point is run with stand-ins for python and alembic)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"

pytestmark = pytest.mark.unit


def stages() -> list[tuple[str, list[str]]]:
    """(stage name, instructions) per FROM, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            match = re.search(r"\bAS\s+(\S+)", line, re.IGNORECASE)
            result.append((match.group(1) if match else "", []))
        elif result:
            result[-1][1].append(line)
    return result


def test_multi_stage_with_a_slim_python_base() -> None:
    names = [name for name, _ in stages()]
    assert names == ["build", "runtime"]
    bases = re.findall(r"^FROM (\S+)", DOCKERFILE.read_text(), re.MULTILINE)
    assert len(bases) == 2 and all(re.fullmatch(r"python:3\.\d+-slim-\w+", base) for base in bases)


def test_build_stage_installs_the_locked_dependencies_with_uv() -> None:
    build = " ".join(dict(stages())["build"])
    assert "uv sync --frozen --no-dev" in build
    assert "COPY pyproject.toml uv.lock" in build


def test_final_stage_runs_as_a_non_root_user_without_build_tools() -> None:
    runtime = dict(stages())["runtime"]
    users = [line.split()[1] for line in runtime if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    joined = " ".join(runtime)
    for tool in ("apt-get install", "gcc", "build-essential", "uv sync", "pip install"):
        assert tool not in joined, tool
    assert "pip uninstall --yes pip" in joined
    copies = [line for line in runtime if line.startswith("COPY")]
    assert copies and all("--from=build" in line for line in copies)


def test_entrypoint_is_the_role_dispatcher() -> None:
    runtime = dict(stages())["runtime"]
    assert 'ENTRYPOINT ["/app/docker/entrypoint.sh"]' in runtime
    assert 'CMD ["api"]' in runtime
    assert os.access(ENTRYPOINT, os.X_OK)


@pytest.fixture
def stub_path(tmp_path: Path) -> dict[str, str]:
    """python and alembic stand-ins that print how they were called."""
    for name in ("python", "alembic"):
        stub = tmp_path / name
        stub.write_text(f'#!/bin/sh\necho "{name} $* role=${{TODO_ROLE:-}}"\n')
        stub.chmod(0o755)
    return {**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["api"], "python -m api --host 0.0.0.0 --port 8000 role=api"),
        (["audit"], "python -m api --host 0.0.0.0 --port 8000 role=audit"),
        (["migrate"], "alembic -c /app/alembic.ini upgrade head role="),
        (["python", "-V"], "python -V role="),
    ],
)
def test_entrypoint_selects_the_role(stub_path: dict[str, str], args: list[str], expected: str) -> None:
    out = subprocess.run([str(ENTRYPOINT), *args], env=stub_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected


def test_entrypoint_honours_port_and_refuses_no_arguments(stub_path: dict[str, str]) -> None:
    out = subprocess.run(
        [str(ENTRYPOINT), "api"],
        env={**stub_path, "PORT": "9000"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--port 9000" in out.stdout
    bare = subprocess.run([str(ENTRYPOINT)], env=stub_path, capture_output=True, text=True, check=False)
    assert bare.returncode == 64
    assert "api|audit|migrate" in bare.stderr


def test_dockerignore_admits_only_what_the_image_copies() -> None:
    lines = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for _, instructions in stages():
        for line in instructions:
            if line.startswith("COPY") and "--from" not in line:
                copied.update(part.rstrip("/") for part in line.split()[1:-1])
    assert copied <= allowed
