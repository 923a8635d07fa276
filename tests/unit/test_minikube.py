"""`./task deploy:minikube` cannot run here (no cluster): its plan is checked instead."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tools.delivery import minikube

pytestmark = pytest.mark.unit


def test_dry_run_follows_the_documented_sequence(capsys: pytest.CaptureFixture[str]) -> None:
    assert minikube.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    order = [
        "dapr init -k --runtime-version 1.18.3",
        "strimzi-kafka-operator --version",
        "backing-services.yaml",
        "rollout status statefulset/postgresql",
        "minikube image build -t todo-workflows:dev",
        "values-minikube.yaml --wait",
        "helm test todo",
    ]
    positions = [out.find(step) for step in order]
    assert all(p >= 0 for p in positions), dict(zip(order, positions, strict=True))
    assert positions == sorted(positions)
    assert "http://todo.minikube.local/mcp" in out


def test_secrets_are_valid_manifests_with_every_key_the_chart_reads() -> None:
    doc = yaml.safe_load(
        minikube.secret_manifest("todo-workflows", {"database-url": "postgresql://u:p@h:5432/todo"})
    )
    assert doc["metadata"] == {"name": "todo-workflows", "namespace": "todo"}
    assert doc["stringData"] == {"database-url": "postgresql://u:p@h:5432/todo"}
    values = yaml.safe_load((minikube.CHART / "values.yaml").read_text())
    source = Path(minikube.__file__).read_text()
    for key in values["secrets"]["keys"].values():
        assert not key or f'"{key}"' in source, key
