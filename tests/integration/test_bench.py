"""Smoke test of the benchmark suite: `python -m bench --quick recurrence`
end to end (command line, harness, JSON and Markdown output). It asserts what
the results say and how they are shaped, never how fast anything was."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.paths import REPO_ROOT

pytestmark = pytest.mark.integration


@pytest.mark.timeout(120)
def test_quick_run_writes_every_figure_with_its_conditions(tmp_path: Path) -> None:
    docs = tmp_path / "performance.md"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "recurrence", "--out", str(tmp_path), "--docs", str(docs)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    results = json.loads((tmp_path / "latest.json").read_text())
    assert results["mode"].startswith("quick")
    machine = results["machine"]
    assert machine["cores"] >= 1 and machine["ram_gib"] > 0 and machine["cpu_model"]
    assert len(machine["git_commit"]) == 40
    assert len(results["load_start"]) == 3 and len(results["load_end"]) == 3

    bench = results["benchmarks"]["recurrence"]
    assert "error" not in bench
    figures = {f["name"]: f for f in bench["figures"]}
    assert all(figure["value"] > 0 for figure in figures.values())
    # Four rules, each timed at #1 and at the late anchor, with their ratio.
    ages = [f for f in figures.values() if "late_index" in f["conditions"]]
    assert len(ages) == 12
    for figure in ages:
        assert figure["conditions"]["late_index"] == 1000
        assert figure["conditions"]["rule"].startswith("FREQ=")
    ratios = [f for f in ages if f["goal"] is not None]
    assert len(ratios) == 4
    assert all(f["status"] in ("PASS", "MISS") for f in ratios)
    # The preview's and the check's worst CPU over two rule sets (no baseline in a quick run), and the CPU
    # per budget unit.
    previews = [f for f in figures.values() if "budget_units" in f["conditions"]]
    assert len(previews) == len(figures) - 12 == 6
    assert {f["unit"] for f in previews} == {"s", "us"}
    assert all(f["status"] in ("PASS", "MISS") for f in previews if f["goal"] is not None)
    assert not any("before" in name for name in figures)

    table = (tmp_path / "latest.md").read_text()
    assert "| recurrence | daily: next after #1 |" in table
    assert table in result.stdout
    # Only a full run may rewrite the published page.
    assert not docs.exists()
    assert "left as it is" in result.stderr


@pytest.mark.timeout(60)
def test_unknown_benchmark_is_refused_naming_the_choices() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "nosuch"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "unknown benchmark(s) nosuch" in result.stderr
    assert "scale" in result.stderr
