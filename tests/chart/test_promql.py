"""The alert rules and every dashboard query are PromQL that Prometheus' own
parser accepts (`promtool check rules`; promtool from the Go module proxy,
cached). The scrape test checks the names; this checks the syntax."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from devstack import toolchain
from tests.monitoring import ALERTS_FILE, dashboard_queries, dashboards

# What Grafana substitutes before a query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$app_id": ".*", "$namespace": ".*"}


@pytest.fixture(scope="module")
def promtool() -> Path:
    return toolchain.ensure(toolchain.PROMTOOL)


def check_rules(promtool: Path, path: Path) -> str:
    result = subprocess.run(
        [str(promtool), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_alert_rules_parse(promtool: Path) -> None:
    rules = sum(len(group["rules"]) for group in yaml.safe_load(ALERTS_FILE.read_text())["groups"])
    assert f"SUCCESS: {rules} rules found" in check_rules(promtool, ALERTS_FILE)


def test_every_dashboard_query_parses(promtool: Path, tmp_path: Path) -> None:
    rules = []
    for name, board in dashboards().items():
        for index, expr in enumerate(dashboard_queries(board)):
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"{name}: a variable promtool cannot stand in for: {expr}"
            rules.append({"record": f"dashboard:{name.replace('-', '_')}:{index}", "expr": expr})
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in check_rules(promtool, path)
