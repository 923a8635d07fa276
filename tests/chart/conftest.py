"""Chart tests: pytest over `helm template` output (helm from the Go module proxy, cached).

Run by `./task chart:check`; they need no cluster. Helpers render the chart with the
environment files and extra values, or return helm's error for values it must refuse.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack import toolchain
from tools.delivery.chart import CHART, ENVIRONMENTS, KUBE_VERSIONS

Doc = dict[str, Any]


class Chart:
    def __init__(self, helm: Path, tmp: Path) -> None:
        self.helm = helm
        self.tmp = tmp

    def _args(self, env: str, values: dict[str, Any] | None) -> list[str]:
        args = [str(self.helm), "template", "todo", str(CHART), "--namespace", "todo"]
        args += ["--kube-version", KUBE_VERSIONS[0]]
        if ENVIRONMENTS[env]:
            args += ["--values", str(CHART / str(ENVIRONMENTS[env]))]
        if values is not None:
            extra = self.tmp / f"extra-{len(list(self.tmp.iterdir()))}.yaml"
            extra.write_text(yaml.safe_dump(values))
            args += ["--values", str(extra)]
        return args

    def render(self, env: str = "default", values: dict[str, Any] | None = None) -> list[Doc]:
        result = subprocess.run(self._args(env, values), capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    def refuse(self, env: str = "default", values: dict[str, Any] | None = None) -> str:
        """helm's error for values the chart must refuse (fails the test if it renders)."""
        result = subprocess.run(self._args(env, values), capture_output=True, text=True, check=False)
        assert result.returncode != 0, "helm rendered values it should have refused"
        return result.stderr


@pytest.fixture(scope="session")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Chart:
    return Chart(toolchain.ensure(toolchain.HELM), tmp_path_factory.mktemp("values"))


def find(docs: list[Doc], kind: str, name: str | None = None) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]
