"""`python -m tools.delivery.chart`: the offline proof of the Helm chart (`./task chart:check`).

For the chart's defaults and each environment's values file it runs `helm lint --strict`,
renders the chart with `helm template` (tests and hooks included) and validates every
manifest: built-in kinds with kubernetes-validate (strict, at the oldest Kubernetes the
chart supports and at the newest the tool knows), Dapr resources against the CRD schemas of
the Dapr version the runtime is built from (and their dapr.io/ pod annotations against the
ones its sidecar injector reads), Strimzi and Prometheus Operator resources (PodMonitor,
PrometheusRule) against the schemas generated from their CRDs (npm, tools/chart/crd-models).
Then checkov scans the rendered manifests and the Dockerfile, hadolint lints the Dockerfile
and shellcheck its entrypoint. Any finding fails the run, with what and where on stderr.

`--values FILE` checks those files instead of the environments (what the tests use to
prove that a broken values file is refused with a readable message).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from devstack import progress, toolchain
from devstack.paths import REPO_ROOT, default_run_dir
from tools.delivery import checkov

CHART = REPO_ROOT / "charts" / "todo-workflows"
DOCKERFILE = REPO_ROOT / "Dockerfile"
ENTRYPOINT = REPO_ROOT / "docker" / "entrypoint.sh"
# `None`: the chart's own values.yaml alone.
ENVIRONMENTS: dict[str, str | None] = {
    "default": None,
    "minikube": "values-minikube.yaml",
    "oke": "values-oke.yaml",
    "aks": "values-aks.yaml",
    "gke": "values-gke.yaml",
    # The defaults with the optional Prometheus Operator and Grafana resources on.
    "monitoring": "ci/values-monitoring.yaml",
}
# The floor of Chart.yaml's kubeVersion, and the newest schemas kubernetes-validate ships.
KUBE_VERSIONS = ("1.33.0", "1.37.0")
RELEASE, NAMESPACE = "todo", "todo"
# Custom resources validated by tools/chart/validate-crds.mjs, and the npm package with their schemas.
DAPR_GROUP = "dapr.io"
CRD_PACKAGES = {
    "kafka.strimzi.io": "strimzi-kafka-operator",
    "core.strimzi.io": "strimzi-kafka-operator",
    "monitoring.coreos.com": "prometheus-operator",
}
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


@dataclass
class Rendered:
    name: str
    values: Path | None
    docs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def kinds(self) -> Counter[str]:
        return Counter(doc["kind"] for doc in self.docs)


def _run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)


def _short(output: str) -> str:
    return "\n".join("      " + line for line in output.strip().splitlines()[-25:])


def lint_and_render(helm: Path, env: Rendered) -> None:
    values = ["--values", str(env.values)] if env.values else []
    kube = ["--kube-version", KUBE_VERSIONS[0]]
    lint = _run([str(helm), "lint", "--strict", str(CHART), *values, *kube])
    if lint.returncode != 0:
        env.errors.append("helm lint --strict failed:\n" + _short(lint.stdout + lint.stderr))
    template = _run([str(helm), "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *values, *kube])
    if template.returncode != 0:
        env.errors.append("helm template failed:\n" + _short(template.stderr))
        return
    env.docs = [doc for doc in yaml.safe_load_all(template.stdout) if doc]


def _ref(doc: dict[str, Any]) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def validate_builtin(bin_dir: Path, env: Rendered, workdir: Path) -> None:
    docs = [d for d in env.docs if d["apiVersion"].split("/")[0] not in (DAPR_GROUP, *CRD_PACKAGES)]
    manifest = workdir / f"{env.name}-builtin.yaml"
    manifest.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    for version in KUBE_VERSIONS:
        result = _run([str(bin_dir / "kubernetes-validate"), "--strict", "-k", version, str(manifest)])
        problems = [line for line in result.stdout.splitlines() if line.startswith(("ERROR", "WARN"))]
        problems += [line for line in result.stderr.splitlines() if line.strip()]
        passed = sum(line.startswith("INFO") for line in result.stdout.splitlines())
        if problems or result.returncode != 0 or passed != len(docs):
            env.errors.append(
                f"Kubernetes {version} schemas ({passed}/{len(docs)} valid):\n"
                + _short("\n".join(problems) or result.stdout)
            )


def _structural(schema: Any) -> Any:
    """A CRD's openAPIV3Schema as the API server applies it: fields it does not declare are
    refused (strict field validation) unless the schema preserves unknown fields."""
    if isinstance(schema, list):
        return [_structural(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _structural(value) for key, value in schema.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    is_object = "properties" in out or out.get("type") == "object"
    if is_object and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


def load_dapr_schemas(crds_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    if not crds_dir.is_dir():
        raise SystemExit(f"The Dapr module has no CRDs at {crds_dir}.")
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(crds_dir.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                if not version.get("served", True):
                    continue
                schema = _structural(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
                schema["properties"]["metadata"] = {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string", "pattern": DNS_LABEL, "maxLength": 63}},
                }
                schemas[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = schema
    return schemas


def known_dapr_annotations(module: Path) -> set[str]:
    """The pod annotations Dapr's sidecar injector reads, from its source."""
    sources = (module / "pkg" / "injector" / "annotations").glob("*.go")
    found = {m for path in sources for m in re.findall(r'"(dapr\.io/[a-z0-9-]+)"', path.read_text())}
    if not found:
        raise SystemExit(f"No dapr.io/ annotations found in the injector sources under {module}.")
    return found


def validate_dapr_annotations(known: set[str], env: Rendered) -> None:
    """A misspelt dapr.io/ annotation is ignored by the injector without a word: refuse it here."""
    for doc in env.docs:
        template = doc.get("spec", {}).get("template", {}) if doc["kind"] != "Pod" else doc
        for key in template.get("metadata", {}).get("annotations", {}) or {}:
            if key.startswith("dapr.io/") and key not in known:
                env.errors.append(
                    f"{_ref(doc)}: Dapr {toolchain.DAPR_VERSION}'s injector has no annotation {key}"
                )


def validate_dapr(schemas: dict[tuple[str, str], dict[str, Any]], env: Rendered) -> None:
    for doc in env.docs:
        if doc["apiVersion"].split("/")[0] != DAPR_GROUP:
            continue
        schema = schemas.get((doc["apiVersion"], doc["kind"]))
        if schema is None:
            env.errors.append(f"{_ref(doc)}: no Dapr {toolchain.DAPR_VERSION} CRD serves {doc['apiVersion']}")
            continue
        # ObjectMeta beyond the name (labels, annotations) is Kubernetes', not the CRD's.
        checked = {**doc, "metadata": {"name": doc.get("metadata", {}).get("name")}}
        for error in jsonschema.Draft7Validator(schema).iter_errors(checked):
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            env.errors.append(
                f"{_ref(doc)} against the Dapr {toolchain.DAPR_VERSION} CRD: {where}: {error.message}"
            )


def validate_crds(models: Path, env: Rendered) -> None:
    docs = [d for d in env.docs if d["apiVersion"].split("/")[0] in CRD_PACKAGES]
    if not docs:
        return
    result = _run(
        ["node", str(REPO_ROOT / "tools" / "chart" / "validate-crds.mjs")],
        input=json.dumps({"packages": CRD_PACKAGES, "resources": docs}),
        env={**os.environ, "CRD_MODELS_DIR": str(models)},
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or len(lines) != len(docs):
        env.errors.append("CRD schema validation (node) did not run:\n" + _short(result.stderr))
        return
    for line in lines:
        for message in line["errors"]:
            env.errors.append(f"{_ref(docs[line['index']])} against its CRD schema: {message}")


def run_checkov(rendered_dir: Path) -> tuple[checkov.Summary, list[str]]:
    """checkov's Kubernetes checks over the rendered manifests and its Dockerfile checks, and
    what went wrong: a run that evaluated nothing is a failure, not a pass."""
    total, problems = checkov.Summary(), []
    # checkov silently skips a directory whose absolute path has a dot-directory (.run/)
    # in it: run it from inside the directory instead.
    runs = {
        "kubernetes": (rendered_dir, ["--directory", "."]),
        "dockerfile": (DOCKERFILE.parent, ["--file", DOCKERFILE.name]),
    }
    for framework, (cwd, target) in runs.items():
        reports = checkov.scan(framework, target, cwd=cwd)
        if len(reports) != 1 or reports[0].get("check_type") != framework:
            raise SystemExit(f"checkov ({framework}) reported something unexpected:\n{str(reports)[:2000]}")
        counts = reports[0]["summary"]
        if counts["resource_count"] == 0 or counts["parsing_errors"]:
            found, broken = counts["resource_count"], counts["parsing_errors"]
            problems.append(f"{framework}: {found} resources evaluated, {broken} parsing errors")
        # One total for the chart, whatever file each result is in.
        for summary in checkov.summarise(reports[0], group=lambda _: "chart").values():
            total.add(summary)
    return total, problems + total.failures


def lint_container_files(bin_dir: Path) -> list[str]:
    errors = []
    hadolint = _run([str(bin_dir / "hadolint"), str(DOCKERFILE)])
    if hadolint.returncode != 0:
        errors.append("hadolint Dockerfile:\n" + _short(hadolint.stdout + hadolint.stderr))
    shellcheck = _run([str(bin_dir / "shellcheck"), str(ENTRYPOINT)])
    if shellcheck.returncode != 0:
        errors.append(f"shellcheck {ENTRYPOINT.name}:\n" + _short(shellcheck.stdout + shellcheck.stderr))
    return errors


def print_table(envs: Iterable[Rendered]) -> None:
    envs = list(envs)
    kinds = sorted({kind for env in envs for kind in env.kinds})
    width = max([len(k) for k in kinds] + [len("schema errors")])
    column = max([10] + [len(env.name) + 2 for env in envs])
    header = "".join(f"{env.name:>{column}}" for env in envs)
    lines = [f"{'kind':<{width}}{header}"]
    for kind in kinds:
        lines.append(f"{kind:<{width}}" + "".join(f"{env.kinds.get(kind, 0):>{column}}" for env in envs))
    lines.append(f"{'total':<{width}}" + "".join(f"{len(env.docs):>{column}}" for env in envs))
    lines.append(f"{'schema errors':<{width}}" + "".join(f"{len(env.errors):>{column}}" for env in envs))
    print("\n".join(lines))


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.delivery.chart",
        description="Lint, render and validate the Helm chart for every environment, offline.",
    )
    parser.add_argument(
        "--values",
        action="append",
        type=Path,
        metavar="FILE",
        help="check these values files instead of the environments (repeatable)",
    )
    parser.add_argument("--skip-checkov", action="store_true", help="schemas only (quicker)")
    parser.add_argument(
        "--out",
        type=Path,
        default=default_run_dir() / "chart-check",
        help="where the rendered manifests and report.json go (default: .run/chart-check)",
    )
    return parser.parse_args(argv)


def render_and_validate(envs: list[Rendered], out: Path) -> Path:
    """Lint, render and validate each environment, keeping its manifests in out/rendered/<name>."""
    helm = toolchain.ensure(toolchain.HELM)
    # tests/chart needs promtool next; built here, its progress shows (pytest would hide it).
    toolchain.ensure(toolchain.PROMTOOL)
    linters = toolchain.ensure(toolchain.CHART_LINTERS)
    dapr_module = toolchain.dapr_source()
    dapr_schemas = load_dapr_schemas(dapr_module / "charts" / "dapr" / "crds")
    dapr_annotations = known_dapr_annotations(dapr_module)
    crd_models = toolchain.ensure(toolchain.CRD_MODELS)

    rendered_dir = out / "rendered"
    rendered_dir.mkdir(parents=True, exist_ok=True)
    for stale in rendered_dir.glob("*/manifests.yaml"):
        stale.unlink()
    with progress.step(f"Linting, rendering and validating the chart for {', '.join(e.name for e in envs)}"):
        for env in envs:
            lint_and_render(helm, env)
            if env.docs:
                (rendered_dir / env.name).mkdir(exist_ok=True)
                (rendered_dir / env.name / "manifests.yaml").write_text(
                    yaml.safe_dump_all(env.docs, sort_keys=False)
                )
                validate_builtin(linters, env, out)
                validate_dapr(dapr_schemas, env)
                validate_dapr_annotations(dapr_annotations, env)
                validate_crds(crd_models, env)
    return rendered_dir


def _verdict(
    envs: list[Rendered], summary: checkov.Summary | None, other_errors: list[str], out: Path
) -> int:
    """Print the tables and every problem, write report.json; 0 when nothing failed."""
    print_table(envs)
    if summary is not None:
        print(f"checkov: {summary.passed} passed, {summary.failed} failed, {summary.skipped} skipped")
        for skip, count in sorted(Counter(summary.skips).items()):
            print(f"  skipped {count:>3} x {skip}")
    report = {
        "environments": {env.name: {"kinds": dict(env.kinds), "errors": env.errors} for env in envs},
        "checkov": dataclasses.asdict(summary) if summary else None,
        "other_errors": other_errors,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))

    failures = [(env.name, error) for env in envs for error in env.errors]
    failures += [("chart", error) for error in other_errors]
    if failures:
        progress.say(f"\nThe chart check FAILED ({len(failures)} problems):")
        for name, error in failures:
            progress.say(f"  [{name}] {error}")
        return 1
    progress.say(f"\nThe chart check passed; rendered manifests in {out / 'rendered'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if args.values:
        envs = [Rendered(path.stem, path.resolve()) for path in args.values]
    else:
        envs = [Rendered(name, CHART / file if file else None) for name, file in ENVIRONMENTS.items()]
    rendered_dir = render_and_validate(envs, args.out)

    other_errors: list[str] = []
    summary = None
    if not args.skip_checkov and all(env.docs for env in envs):
        toolchain.ensure(toolchain.CHECKOV)  # installed before the timed step, if it must be
        with progress.step("checkov over the rendered manifests and the Dockerfile"):
            summary, problems = run_checkov(rendered_dir)
        other_errors += [f"checkov: {problem}" for problem in problems]
    if not args.values:
        other_errors += lint_container_files(toolchain.ensure(toolchain.CHART_LINTERS))
    return _verdict(envs, summary, other_errors, args.out)


if __name__ == "__main__":
    sys.exit(main())
