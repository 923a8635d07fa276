"""The dashboards and alert rules as the tests see them: where they live, and
the metric names their PromQL refers to.

The canonical files are in the chart (Helm can only read files inside it);
grafana/ links to them for people who import dashboards by hand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import yaml

from devstack.paths import REPO_ROOT

CHART_FILES = REPO_ROOT / "charts" / "todo-workflows" / "files"
DASHBOARDS_DIR = CHART_FILES / "dashboards"
ALERTS_FILE = CHART_FILES / "alerts.yaml"
GRAFANA_DIR = REPO_ROOT / "grafana"
DASHBOARD_NAMES = ("recurring-tasks", "reminders", "events-kafka", "dapr-workflows")

# Metrics that neither the app nor daprd exports: Kafka Lag Exporter's (the
# consumer lag of the audit consumer group), documented in grafana/README.md.
KAFKA_EXPORTER_METRICS = frozenset({"kafka_consumergroup_group_lag_seconds", "kafka_consumergroup_group_lag"})

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPINGS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_VARIABLES = re.compile(r"\$\{[^}]*\}|\$\w+")
_IDENTIFIER = re.compile(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"})
_LABEL_VALUES = re.compile(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: every identifier that is
    not a function or aggregation (followed by `(`), a keyword, a label name
    (inside braces or a grouping clause) or a label value."""
    text = _VARIABLES.sub("", _STRINGS.sub('""', expr))
    previous = None
    while previous != text:
        previous, text = text, _MATCHERS.sub(" ", text)
    text = _GROUPINGS.sub(" ", _RANGES.sub(" ", text))
    return {
        name
        for name, call in _IDENTIFIER.findall(text)
        if not call and name not in _KEYWORDS and not re.fullmatch(r"(?i)inf|nan", name)
    }


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(DASHBOARDS_DIR.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries(dashboard: dict[str, Any]) -> Iterator[str]:
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield target["expr"]


def variable_metrics(dashboard: dict[str, Any]) -> set[str]:
    """Metrics the template variables take their values from (label_values(metric, label))."""
    found: set[str] = set()
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        found.update(_LABEL_VALUES.findall(text))
    return found


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS_FILE.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def referenced_metrics() -> dict[str, set[str]]:
    """Metric name -> where it is used ("dashboard <name>" / "alert <name>")."""
    uses: dict[str, set[str]] = {}
    for name, dashboard in dashboards().items():
        names = variable_metrics(dashboard)
        for expr in dashboard_queries(dashboard):
            names |= metric_names(expr)
        for metric in names:
            uses.setdefault(metric, set()).add(f"dashboard {name}")
    for rule in alert_rules():
        for metric in metric_names(rule["expr"]):
            uses.setdefault(metric, set()).add(f"alert {rule['alert']}")
    return uses
