"""The container image's shape, read from the Dockerfile (tests/image starts the built image),
and the entry point run with stand-ins for python and alembic."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tools.delivery import image

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


def test_both_stages_build_from_one_base_argument_defaulting_to_slim_python() -> None:
    text = DOCKERFILE.read_text()
    assert [name for name, _ in stages()] == ["build", "runtime"]
    assert re.findall(r"^FROM (\S+)", text, re.MULTILINE) == ["${BASE_IMAGE}", "${BASE_IMAGE}"]
    # Declared before the first FROM, so that both FROM lines can use it.
    before_from = text[: text.index("\nFROM ")]
    default = re.search(r"^ARG BASE_IMAGE=(\S+)$", before_from, re.MULTILINE)
    # The offline base is the same Debian release, whose python3 is the same 3.11.
    assert default is not None and default.group(1) == f"python:3.11-slim-{image.SUITE}"


def test_nothing_needs_buildkit_or_a_frontend_from_docker_hub() -> None:
    text = DOCKERFILE.read_text()
    assert not re.search(r"^#\s*syntax=", text, re.MULTILINE | re.IGNORECASE)
    assert "--mount=" not in text
    assert not re.search(r"<<-?\s*['\"]?[A-Z]+", text), "heredocs need BuildKit"


def test_uv_comes_from_a_virtualenv_of_its_own_and_trusts_the_system_store() -> None:
    build = dict(stages())["build"]
    joined = " ".join(" ".join(build).split())
    # A Debian python3 refuses `pip install` into the system (PEP 668).
    assert 'python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"' in joined
    assert re.findall(r"(?<![/\w])pip install", joined) == []
    env = " ".join(line for line in build if line.startswith("ENV "))
    assert "UV_SYSTEM_CERTS=true" in env
    assert "PIP_CERT=/etc/ssl/certs/ca-certificates.crt" in env
    # No cache mount: nothing is kept between builds but the layers.
    assert "UV_NO_CACHE=1" in env


def test_build_stage_installs_the_locked_dependencies_with_uv() -> None:
    build = " ".join(dict(stages())["build"])
    assert "uv sync --frozen --no-dev" in build
    assert "COPY pyproject.toml uv.lock" in build


def test_final_stage_runs_as_a_non_root_user_without_build_tools() -> None:
    runtime = dict(stages())["runtime"]
    users = [line.split()[1] for line in runtime if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    joined = " ".join(" ".join(runtime).split())
    for tool in ("apt-get install", "gcc", "build-essential", "uv sync", "pip install"):
        assert tool not in joined, tool
    # Only where there is a pip: the Debian base has none, the official one does.
    assert "if python3 -m pip --version >/dev/null 2>&1; then python3 -m pip uninstall --yes pip" in joined
    assert "rm -rf /root/.cache /usr/share/python-wheels" in joined
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
