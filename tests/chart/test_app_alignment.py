"""The chart configures the app it deploys: every TODO_* variable it sets is a
real setting (a misspelt one is silently ignored by pydantic-settings), its
Dapr subscriptions are the local Kafka profile's (components/common for the
dead letters, components/kafka for the topics), and their routes
exist in the audit app. Plus the optional monitoring resources."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from starlette.routing import Match

from devstack.paths import COMPONENTS_DIR
from devstack.sidecars import go_memlimit
from tests.chart.conftest import Chart, Doc, find, one
from tests.monitoring import ALERTS_FILE, DASHBOARD_NAMES, dashboards
from todos.core.settings import Settings
from tools.delivery.chart import ENVIRONMENTS

ENVS = list(ENVIRONMENTS)


def containers(doc: Doc) -> list[dict[str, Any]]:
    spec = doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def subscriptions(docs: list[Doc]) -> set[tuple[Any, ...]]:
    """What a subscription does, without its name and scopes (app-ids are values)."""
    out = set()
    for doc in docs:
        if doc["kind"] != "Subscription":
            continue
        spec = doc["spec"]
        bulk = spec.get("bulkSubscribe", {})
        out.add(
            (
                spec["pubsubname"],
                spec["topic"],
                spec["routes"]["default"],
                spec.get("deadLetterTopic"),
                bulk.get("enabled", False),
                bulk.get("maxMessagesCount"),
                bulk.get("maxAwaitDurationMs"),
                spec.get("metadata", {}).get("rawPayload"),
                tuple(doc.get("scopes", [])),
            )
        )
    return out


@pytest.mark.parametrize("env", ENVS)
def test_every_todo_variable_the_chart_sets_is_a_setting(chart: Chart, env: str) -> None:
    docs = chart.render(env, {"smtp": {"username": "mailer"}, "extraEnv": []})
    fields = set(Settings.model_fields)
    seen = set()
    for doc in docs:
        if doc["kind"] not in ("Deployment", "Job", "Pod"):
            continue
        for container in containers(doc):
            for variable in container.get("env", []):
                name = variable["name"]
                if name.startswith("TODO_"):
                    seen.add(name)
                    assert name.removeprefix("TODO_").lower() in fields, (
                        f"{doc['kind']}/{doc['metadata']['name']} sets {name}, which "
                        "todos.core.settings.Settings does not read"
                    )
    assert {"TODO_SMTP_SECURITY", "TODO_OUTBOX_POLL_SECONDS", "TODO_LOG_FORMAT", "TODO_SMTP_USERNAME"} <= seen


def test_smtp_security_values_are_the_settings_choices(chart: Chart) -> None:
    for security in ("starttls", "tls", "none"):
        docs = chart.render("default", {"smtp": {"security": security}})
        api = one(docs, "Deployment", "todo-todo-workflows-api")
        env = {e["name"]: e.get("value") for e in containers(api)[0]["env"]}
        assert Settings(env="dev", smtp_security=env["TODO_SMTP_SECURITY"]).smtp_security == security
    assert "security" in chart.refuse("default", {"smtp": {"security": "ssl"}})


def test_outbox_defaults_are_the_apps_measured_defaults(chart: Chart) -> None:
    # docs/performance.md's events figures were taken with the app's defaults.
    api = one(chart.render("default"), "Deployment", "todo-todo-workflows-api")
    env = {e["name"]: e.get("value") for e in containers(api)[0]["env"]}
    for variable, field in (
        ("TODO_OUTBOX_BATCH_SIZE", "outbox_batch_size"),
        ("TODO_OUTBOX_POLL_SECONDS", "outbox_poll_seconds"),
    ):
        assert float(env[variable]) == Settings.model_fields[field].default, variable


@pytest.mark.parametrize("budget_mib", [512, 768, 1536])
def test_the_local_api_sidecar_gets_the_go_memory_limit_the_chart_gives_it(
    chart: Chart, budget_mib: int
) -> None:
    # The scale benchmark's memory figures hold for the chart only if both
    # derive daprd's GOMEMLIMIT from a budget the same way.
    docs = chart.render("default", {"api": {"sidecarMemoryLimit": f"{budget_mib}Mi"}})
    api = one(docs, "Deployment", "todo-todo-workflows-api")
    notes = api["spec"]["template"]["metadata"]["annotations"]
    assert notes["dapr.io/env"] == f"GOMEMLIMIT={go_memlimit(budget_mib)}"


@pytest.mark.parametrize("env", ENVS)
def test_subscriptions_match_the_local_components_and_the_app_routes(chart: Chart, env: str) -> None:
    from api.app import create_app

    # The chart always deploys Kafka: compare with the local kafka profile.
    local = [
        doc
        for directory in ("common", "kafka")
        for doc in yaml.safe_load_all((COMPONENTS_DIR / directory / "subscriptions.yaml").read_text())
        if doc
    ]
    rendered = find(chart.render(env), "Subscription")
    assert subscriptions(rendered) == subscriptions(local)

    audit = create_app(Settings(env="dev", role="audit"), background=False)
    for doc in rendered:
        path = doc["spec"]["routes"]["default"]
        scope = {"type": "http", "path": path, "method": "POST"}
        matched = [route for route in audit.router.routes if route.matches(scope)[0] == Match.FULL]
        assert matched, (
            f"Subscription {doc['metadata']['name']} delivers to {path}: no such route in the audit app"
        )


def test_monitoring_resources_are_off_by_default(chart: Chart) -> None:
    docs = chart.render("default")
    assert not find(docs, "PodMonitor") and not find(docs, "PrometheusRule")
    assert not [d for d in find(docs, "ConfigMap") if "grafana_dashboard" in d["metadata"]["labels"]]


def test_monitoring_renders_the_rules_file_and_every_dashboard(chart: Chart) -> None:
    docs = chart.render("monitoring", {"monitoring": {"dashboards": {"namespace": "grafana"}}})
    rule = one(docs, "PrometheusRule", "todo-todo-workflows")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"] == yaml.safe_load(ALERTS_FILE.read_text())

    maps = {d["metadata"]["name"]: d for d in find(docs, "ConfigMap")}
    for name in DASHBOARD_NAMES:
        config_map = maps[f"todo-todo-workflows-dashboard-{name}"]
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["metadata"]["namespace"] == "grafana"
        assert yaml.safe_load(config_map["data"][f"{name}.json"]) == dashboards()[name]

    monitor = one(docs, "PodMonitor", "todo-todo-workflows")
    endpoints = {e["port"]: e for e in monitor["spec"]["podMetricsEndpoints"]}
    assert set(endpoints) == {"http", "dapr-metrics"}
    assert endpoints["http"]["relabelings"][0]["targetLabel"] == "app_id"
    # The pods it selects expose both ports under those names (daprd's is named by the injector).
    for role in ("api", "audit"):
        deployment = one(docs, "Deployment", f"todo-todo-workflows-{role}")
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert [p["name"] for p in containers(deployment)[0]["ports"]] == ["http"]


@pytest.mark.parametrize("env", ENVS)
def test_daprds_concurrency_into_the_app_fits_its_threads_and_connections(chart: Chart, env: str) -> None:
    import anyio.to_thread

    async def thread_tokens() -> float:
        return anyio.to_thread.current_default_thread_limiter().total_tokens

    threads = anyio.run(thread_tokens)
    docs = chart.render(env)
    for role in ("api", "audit"):
        deployment = one(docs, "Deployment", f"todo-todo-workflows-{role}")
        env_vars = {e["name"]: e.get("value") for e in containers(deployment)[0]["env"]}
        settings = Settings(
            env="dev",
            **{
                field: env_vars[f"TODO_{field.upper()}"]
                for field in ("db_pool_size", "db_max_overflow", "smtp_max_connections")
                if f"TODO_{field.upper()}" in env_vars
            },
        )
        limit = int(deployment["spec"]["template"]["metadata"]["annotations"]["dapr.io/app-max-concurrency"])
        # All of them in their database step at once fit in the connections
        # kept open; half the threads or less: REST, MCP and activities need the rest.
        assert limit <= settings.db_pool_size, role
        assert 2 * limit <= threads, role
        if role == "api":  # each job callback sends one email: no queueing for a session
            assert limit <= settings.smtp_max_connections
