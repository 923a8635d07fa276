"""`python -m tools.delivery.minikube` (`./task deploy:minikube`): the whole stack on a running Minikube.

The real sequence, in order: Dapr's control plane (`dapr init -k`), the Strimzi operator,
PostgreSQL and Mailpit (tools/minikube/backing-services.yaml), the Secrets the chart
references (random values, made once), the image built inside Minikube, the ingress addon,
then the chart with values-minikube.yaml (which asks Strimzi for a KRaft Kafka and the
topics) and `helm test`. Ends by printing where everything is reachable.

Start Minikube first, with a CNI that enforces NetworkPolicies and room for Kafka:
    minikube start --cni=calico --cpus=4 --memory=8g
`--dry-run` prints the commands without running them. Not run in CI (no cluster there).
"""

from __future__ import annotations

import argparse
import secrets
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

from devstack import progress, toolchain
from devstack.paths import REPO_ROOT

DAPR_VERSION = toolchain.DAPR_VERSION
STRIMZI_CHART = "oci://quay.io/strimzi-helm/strimzi-kafka-operator"
STRIMZI_VERSION = "0.48.0"
NAMESPACE = "todo"
RELEASE = "todo"
IMAGE = "todo-workflows:dev"
CHART = REPO_ROOT / "charts" / "todo-workflows"
BACKING = REPO_ROOT / "tools" / "minikube" / "backing-services.yaml"
HOST = "todo.minikube.local"
API_SERVICE = f"{RELEASE}-todo-workflows-api"


@dataclass
class Runner:
    dry_run: bool
    helm: str = "helm"
    steps: list[str] = field(default_factory=list)

    def run(self, title: str, *args: str, stdin: str | None = None) -> str:
        line = shlex.join(args)
        self.steps.append(line)
        if self.dry_run:
            print(f"# {title}\n{line}")
            return ""
        with progress.step(title):
            result = subprocess.run(args, input=stdin, text=True, capture_output=True, check=False)
            if result.returncode != 0:
                raise SystemExit(f"`{line}` failed:\n{result.stderr.strip() or result.stdout.strip()}")
        return result.stdout

    def probe(self, *args: str) -> bool:
        """True when the command succeeds (checks that decide whether a step is needed)."""
        if self.dry_run:
            return False
        return subprocess.run(args, capture_output=True, check=False).returncode == 0


def _preflight(dry_run: bool) -> None:
    missing = [tool for tool in ("minikube", "kubectl", "dapr") if shutil.which(tool) is None]
    if missing and not dry_run:
        raise SystemExit(
            f"Missing on PATH: {', '.join(missing)}. Install minikube, kubectl and the Dapr CLI "
            "(https://docs.dapr.io/getting-started/install-dapr-cli/), then `minikube start "
            "--cni=calico --cpus=4 --memory=8g`."
        )
    if not dry_run and subprocess.run(["minikube", "status"], capture_output=True, check=False).returncode:
        raise SystemExit("Minikube is not running: `minikube start --cni=calico --cpus=4 --memory=8g` first.")


def secret_manifest(name: str, values: dict[str, str], namespace: str = NAMESPACE) -> str:
    lines = [
        "apiVersion: v1",
        "kind: Secret",
        "metadata:",
        f"  name: {name}",
        f"  namespace: {namespace}",
        "type: Opaque",
        "stringData:",
    ]
    lines += [f"  {key}: {value!r}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def app_secrets_manifest(database: str, smtp_password: str, namespace: str = NAMESPACE) -> str:
    """The chart's two Secrets with random credentials: `database` is the server's URL without a
    database name (the app's database is `todo`, Dapr's state store's `dapr_state`)."""
    app_secrets = {
        "database-url": f"{database}/todo",
        "state-database-url": f"{database}/dapr_state?sslmode=disable",
        "jwt-secret": secrets.token_urlsafe(48),
        "smtp-password": smtp_password,
        "kafka-password": "unused-without-sasl",
    }
    token = {"token": secrets.token_urlsafe(32)}
    return (
        secret_manifest("todo-workflows", app_secrets, namespace)
        + "---\n"
        + secret_manifest("todo-workflows-app-token", token, namespace)
    )


def deploy(runner: Runner) -> None:
    kubectl_ns = ("kubectl", "--namespace", NAMESPACE)
    if runner.probe("dapr", "status", "-k"):
        progress.say(f"==> Dapr's control plane is already installed (expecting {DAPR_VERSION})")
    else:
        runner.run(
            f"Installing Dapr {DAPR_VERSION} into the cluster",
            "dapr", "init", "-k", "--runtime-version", DAPR_VERSION, "--wait", "--timeout", "600",
        )  # fmt: skip
    runner.run(
        f"Installing the Strimzi operator {STRIMZI_VERSION}",
        runner.helm, "upgrade", "--install", "strimzi", STRIMZI_CHART, "--version", STRIMZI_VERSION,
        "--namespace", "strimzi", "--create-namespace", "--set", f"watchNamespaces={{{NAMESPACE}}}", "--wait",
    )  # fmt: skip
    namespace = f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n"
    runner.run("Creating the namespace", "kubectl", "apply", "-f", "-", stdin=namespace)

    if not runner.probe(*kubectl_ns, "get", "secret", "postgresql"):
        password = secrets.token_urlsafe(24)
        runner.run(
            "Creating the PostgreSQL password",
            "kubectl", "apply", "-f", "-",
            stdin=secret_manifest("postgresql", {"password": password}),
        )  # fmt: skip
        base = f"postgresql://todo:{password}@postgresql.{NAMESPACE}.svc:5432"
        runner.run(
            "Creating the app's Secrets (random credentials, made once)",
            "kubectl", "apply", "-f", "-", stdin=app_secrets_manifest(base, "unused-by-mailpit"),
        )  # fmt: skip
    runner.run("Starting PostgreSQL and Mailpit", *kubectl_ns, "apply", "-f", str(BACKING))
    runner.run(
        "Waiting for PostgreSQL",
        *kubectl_ns, "rollout", "status", "statefulset/postgresql", "--timeout=300s",
    )  # fmt: skip
    runner.run("Building the image inside Minikube (a few minutes the first time)",
               "minikube", "image", "build", "-t", IMAGE, str(REPO_ROOT))  # fmt: skip
    runner.run("Enabling the ingress controller", "minikube", "addons", "enable", "ingress")
    runner.run(
        "Installing the chart with values-minikube.yaml (Kafka comes up through Strimzi first)",
        runner.helm, "upgrade", "--install", RELEASE, str(CHART), "--namespace", NAMESPACE,
        "--values", str(CHART / "values-minikube.yaml"), "--wait", "--timeout", "20m",
    )  # fmt: skip
    runner.run("helm test: both roles answer /readyz", runner.helm, "test", RELEASE, "--namespace", NAMESPACE)


def print_urls(runner: Runner) -> None:
    ip = (
        "$(minikube ip)"
        if runner.dry_run
        else runner.run("Reading Minikube's address", "minikube", "ip").strip()
    )
    print(
        "\n".join(
            [
                "",
                "todo-workflows runs on Minikube:",
                f"  add to /etc/hosts:  {ip} {HOST}",
                f"  REST API     http://{HOST}/v1/tasks      (docs http://{HOST}/docs)",
                f"  MCP          http://{HOST}/mcp",
                f"  no DNS?      kubectl -n {NAMESPACE} port-forward svc/{API_SERVICE} 8000:80",
                f"  Mailpit      kubectl -n {NAMESPACE} port-forward svc/mailpit 8025 (http://127.0.0.1:8025)",
                "  Dapr         dapr dashboard -k -p 9999  -> http://127.0.0.1:9999",
                "  Grafana      see the chart's NOTES (helm get notes todo -n todo)",
                f"  JWT secret   kubectl -n {NAMESPACE} get secret todo-workflows"
                " -o jsonpath='{.data.jwt-secret}' | base64 -d",
            ]
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.delivery.minikube",
        description="Deploy Dapr, Strimzi Kafka, PostgreSQL and the chart to a running Minikube.",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the commands instead of running them")
    args = parser.parse_args(argv)
    _preflight(args.dry_run)
    helm = "helm" if args.dry_run else str(toolchain.ensure(toolchain.HELM))
    runner = Runner(dry_run=args.dry_run, helm=helm)
    deploy(runner)
    print_urls(runner)
    return 0


if __name__ == "__main__":
    sys.exit(main())
