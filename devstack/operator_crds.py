"""The CRDs of the operators the cloud values file their resources with: Strimzi's Kafka,
KafkaNodePool and KafkaTopic, the Prometheus Operator's PodMonitor and PrometheusRule. With them
installed, the live API server validates those resources as a cloud cluster's would
(`./task cluster:dry-run`). Neither project's release files can be downloaded here, so they are
made from what the registries serve: Strimzi's CRDs by Strimzi's own generator run over its API
classes (Maven Central), the tool Strimzi's build makes its released CRDs with; the Prometheus Operator's are
files of its Go module."""

from __future__ import annotations

import shutil
from pathlib import Path

from devstack import progress
from devstack.gocmd import checked, module_dir

_POM = Path(__file__).resolve().parent.parent / "tools" / "crds" / "pom.xml"
_STRIMZI_KINDS = {
    "io.strimzi.api.kafka.model.kafka.Kafka": "kafka.strimzi.io_kafkas.yaml",
    "io.strimzi.api.kafka.model.nodepool.KafkaNodePool": "kafka.strimzi.io_kafkanodepools.yaml",
    "io.strimzi.api.kafka.model.topic.KafkaTopic": "kafka.strimzi.io_kafkatopics.yaml",
}
_PROMETHEUS_OPERATOR_KINDS = ("podmonitors", "prometheusrules")


def build_operator_crds(strimzi: str, prometheus_operator: str, staging: Path) -> None:
    """Every CRD as one YAML file in staging/crds."""
    crds = staging / "crds"
    crds.mkdir()
    libs = staging / "strimzi-libs"
    checked(
        f"Fetching Strimzi {strimzi}'s API and CRD generator with Maven",
        [
            *("mvn", "--batch-mode", "--no-transfer-progress", "-f", str(_POM)),
            "dependency:copy-dependencies",
            f"-Dstrimzi.version={strimzi}",
            f"-DoutputDirectory={libs}",
            "-DincludeScope=runtime",
        ],
    )
    progress.say(
        f"    generating the Strimzi CRDs ({', '.join(k.rsplit('.', 1)[1] for k in _STRIMZI_KINDS)})"
    )
    checked(
        "Strimzi's CRD generator",
        [
            *("java", "-cp", f"{libs}/*", "io.strimzi.crdgenerator.CrdGenerator", "--yaml"),
            # The chart's API version, served and stored, in an apiextensions.k8s.io/v1 CRD.
            *("--crd-api-version", "v1", "--api-versions", "v1beta2", "--storage-version", "v1beta2"),
            *("--target-kube", "1.16+"),
            *(f"{kind}={crds / name}" for kind, name in _STRIMZI_KINDS.items()),
        ],
    )
    shutil.rmtree(libs)
    source = module_dir(f"github.com/prometheus-operator/prometheus-operator@{prometheus_operator}")
    for kind in _PROMETHEUS_OPERATOR_KINDS:
        name = f"monitoring.coreos.com_{kind}.yaml"
        shutil.copyfile(source / "example" / "prometheus-operator-crd" / name, crds / name)


def operator_crds_usable(crds: Path) -> bool:
    names = {
        *_STRIMZI_KINDS.values(),
        *(f"monitoring.coreos.com_{k}.yaml" for k in _PROMETHEUS_OPERATOR_KINDS),
    }
    return all((crds / name).is_file() for name in names)
