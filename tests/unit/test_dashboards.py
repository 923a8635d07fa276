"""Grafana dashboards and Prometheus alert rules: they parse, are portable
(no data source baked in), described, and refer to metrics by name in a way
the scrape test (tests/integration/test_observability.py) can check."""

from __future__ import annotations

from typing import Any

import pytest

from tests.monitoring import (
    ALERTS_FILE,
    DASHBOARD_NAMES,
    DASHBOARDS_DIR,
    GRAFANA_DIR,
    KAFKA_EXPORTER_METRICS,
    alert_rules,
    dashboard_queries,
    dashboards,
    metric_names,
    panels,
    referenced_metrics,
)

pytestmark = pytest.mark.unit

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
REQUIRED_ALERTS = {
    "TodoReminderLatenessHigh",
    "TodoOutboxPendingGrowing",
    "TodoConsumerLagHigh",
    "TodoWorkflowExecutionsFailing",
    "TodoHttp5xxRate",
}


def _walk(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every (path, value) of a "datasource" key anywhere in a JSON document."""
    found: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "datasource":
                found.append((f"{path}/{key}", item))
            found += _walk(item, f"{path}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _walk(item, f"{path}/{index}")
    return found


def test_the_four_dashboards_exist_and_grafana_dir_links_to_the_chart_copy() -> None:
    assert set(dashboards()) == set(DASHBOARD_NAMES)
    for name in DASHBOARD_NAMES:
        link = GRAFANA_DIR / f"{name}.json"
        assert link.is_symlink(), f"{link} should link to the chart's file (one source, no copy)"
        assert link.resolve() == (DASHBOARDS_DIR / f"{name}.json").resolve()
    alerts = GRAFANA_DIR / "alerts.yaml"
    assert alerts.is_symlink() and alerts.resolve() == ALERTS_FILE.resolve()


def test_uids_are_stable_and_unique() -> None:
    uids = {name: board["uid"] for name, board in dashboards().items()}
    assert uids == {name: f"todo-{name}" for name in DASHBOARD_NAMES}
    assert len(set(uids.values())) == len(uids)
    titles = [board["title"] for board in dashboards().values()]
    assert len(set(titles)) == len(titles)


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_datasource_namespace_and_app_id_are_variables(name: str) -> None:
    variables = {v["name"]: v for v in dashboards()[name]["templating"]["list"]}
    assert {"datasource", "namespace", "app_id"} <= set(variables)
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for label in ("namespace", "app_id"):
        variable = variables[label]
        assert variable["type"] == "query"
        assert variable["datasource"] == DATASOURCE
        assert f", {label})" in variable["definition"]
        assert variable["includeAll"] is True
        assert variable["description"]


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_no_data_source_is_hard_coded(name: str) -> None:
    board = dashboards()[name]
    for path, value in _walk(board):
        assert value == DATASOURCE, f"{name}{path}: {value!r} (use the ${{datasource}} variable)"


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_every_panel_is_described_and_queries_by_namespace_or_app_id(name: str) -> None:
    board = dashboards()[name]
    assert board["description"]
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids must be unique within a dashboard"
    for panel in panels(board):
        if panel["type"] == "row":
            continue
        assert panel.get("description", "").strip(), f"{name}: panel {panel['title']!r} has no description"
        assert panel["targets"], f"{name}: panel {panel['title']!r} queries nothing"
    for expr in dashboard_queries(board):
        assert "$app_id" in expr or "$namespace" in expr, f"{name}: {expr} ignores the variables"


def test_alert_rules_are_complete() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED_ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert metric_names(rule["expr"]), f"{rule['alert']} selects no metric"


def test_every_referenced_metric_is_the_apps_daprds_or_a_documented_exporters() -> None:
    for metric, uses in referenced_metrics().items():
        known = metric.startswith(("todo_", "dapr_")) or metric in KAFKA_EXPORTER_METRICS
        assert known, f"{metric} (used by {sorted(uses)}) comes from nowhere documented"
    readme = (GRAFANA_DIR / "README.md").read_text()
    for metric in KAFKA_EXPORTER_METRICS:
        assert metric in readme, f"grafana/README.md should document the exporter metric {metric}"


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (
            'sum by (kind) (rate(todo_tasks_created_total{app_id=~"$app_id"}[$__rate_interval]))',
            {"todo_tasks_created_total"},
        ),
        (
            'histogram_quantile(0.99, sum by (namespace, le) (rate(a_bucket{r="/job/{name}"}[10m]))) > 3',
            {"a_bucket"},
        ),
        ("max by (x) (a) > 0 and max by (x) (deriv(b[10m])) > 0", {"a", "b"}),
        ("sum(rate(a[5m])) / on (app_id) group_left (pod) b offset 5m", {"a", "b"}),
        ('c{status=~"5.."} / ignoring(status) d', {"c", "d"}),
    ],
)
def test_metric_names_are_read_out_of_promql(expr: str, expected: set[str]) -> None:
    assert metric_names(expr) == expected
