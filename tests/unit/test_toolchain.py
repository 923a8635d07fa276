"""The toolchain's one find-or-install routine, and tools/versions.toml as the one place a
tool's version is written (the copies that cannot read it are checked against it)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from devstack import toolchain
from devstack.paths import REPO_ROOT

pytestmark = pytest.mark.unit


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TODO_CACHE_DIR", str(tmp_path))
    return tmp_path


def _tool(installs: list[Path], elsewhere: list[Path] | None = None, fail: bool = False) -> toolchain.Tool:
    def install(staging: Path) -> None:
        installs.append(staging)
        (staging / "bin").mkdir()
        (staging / "bin" / "thing").write_text("v1")
        if fail:
            raise SystemExit("the download broke")

    return toolchain.Tool(
        "thing",
        "Installing thing 1",
        install,
        entry="bin/thing",
        version="1",
        elsewhere=lambda: elsewhere or [],
    )


def test_a_tool_is_installed_once_under_its_name_and_version(cache: Path) -> None:
    installs: list[Path] = []
    tool = _tool(installs)
    assert toolchain.find(tool) is None
    assert toolchain.ensure(tool) == cache / "thing-1" / "bin" / "thing"
    assert toolchain.ensure(tool) == cache / "thing-1" / "bin" / "thing"
    # Built aside and renamed into place: a directory under its final name is whole.
    assert installs == [cache / "thing-1.partial"]
    assert sorted(path.name for path in cache.iterdir()) == ["thing-1"]


def test_a_failed_install_leaves_nothing_behind(cache: Path) -> None:
    with pytest.raises(SystemExit, match="the download broke"):
        toolchain.ensure(_tool([], fail=True))
    assert list(cache.iterdir()) == []


def test_a_usable_install_elsewhere_comes_first(cache: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere-thing"
    other.write_text("theirs")
    installs: list[Path] = []
    assert toolchain.ensure(_tool(installs, elsewhere=[tmp_path / "missing", other])) == other
    assert installs == []


def test_a_missing_command_is_named_with_what_would_do_instead(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(cache))
    monkeypatch.delenv("TERRAFORM", raising=False)
    with pytest.raises(SystemExit, match=r"needs Go 1\.26\+ \(go on PATH\)\. Or provide a terraform 1\.5\+"):
        toolchain.ensure(toolchain.TERRAFORM)


def test_a_lock_names_its_tools_directory(cache: Path) -> None:
    digest = toolchain.CHECKOV.home.name.removeprefix("checkov-")
    assert re.fullmatch(r"[0-9a-f]{12}", digest)
    assert toolchain.CHART_LINTERS.home.name != f"chart-linters-{digest}"


def test_checkov_is_locked_once() -> None:
    locks = sorted(REPO_ROOT.glob("tools/*/requirements.txt"))
    holding = [lock for lock in locks if re.search(r"^checkov==", lock.read_text(), re.MULTILINE)]
    assert holding == [toolchain.CHECKOV.lock]


# --- tools/versions.toml and the copies of its versions ----------------------------------------


def test_every_tool_the_toolchain_installs_at_a_version_takes_it_from_versions_toml() -> None:
    # Dapr's operator, injector and sentry come from the module daprd is built from.
    assert toolchain.DAPR_KUBERNETES.version == toolchain.VERSIONS["dapr"]
    # The operators' CRDs are made from two projects' releases, and named by both.
    crds = ("strimzi", "prometheus-operator")
    assert toolchain.OPERATOR_CRDS.version == "-".join(toolchain.VERSIONS[name] for name in crds)
    singles = (toolchain.DAPR_KUBERNETES, toolchain.OPERATOR_CRDS)
    tools = [tool for tool in toolchain.TOOLS.values() if tool not in singles]
    versioned = {tool.name: tool.version for tool in tools if tool.version}
    assert versioned == {name: toolchain.VERSIONS[name] for name in versioned}
    assert set(toolchain.VERSIONS) == {*versioned, "uv", *crds}


def test_task_reads_the_uv_version_from_versions_toml() -> None:
    script = (REPO_ROOT / "task").read_text()
    assert toolchain.VERSIONS["uv"] not in script
    line = next(line for line in script.splitlines() if line.startswith("UV_VERSION="))
    out = subprocess.run(
        ["bash", "-c", f"{line}; echo $UV_VERSION"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == toolchain.VERSIONS["uv"]


def test_the_dockerfile_installs_the_same_uv() -> None:
    match = re.search(r"^ARG UV_VERSION=(\S+)$", (REPO_ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert match is not None and match.group(1) == toolchain.VERSIONS["uv"]


def test_the_deploy_workflow_uses_the_same_helm() -> None:
    workflow = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "deploy.yml").read_text())
    assert workflow["env"]["HELM_VERSION"] == toolchain.VERSIONS["helm"]


def test_the_dapr_module_requires_the_same_dapr() -> None:
    go_mod = (toolchain.DAPR_MODULE / "go.mod").read_text()
    assert re.findall(r"^\s*github\.com/dapr/dapr (v\S+)", go_mod, re.MULTILINE) == [
        f"v{toolchain.DAPR_VERSION}"
    ]


def test_the_kafka_pom_leaves_the_version_to_the_toolchain() -> None:
    assert "<kafka.version>" not in (REPO_ROOT / "tools" / "kafka" / "pom.xml").read_text()
