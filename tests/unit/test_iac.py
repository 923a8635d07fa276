"""The Terraform in iac/ parses and is fully declared; the offline checkers catch what they claim to."""

from __future__ import annotations

import stat
from pathlib import Path

import hcl2
import pytest

from devstack import toolchain
from devstack.paths import REPO_ROOT
from tools.delivery import checkov, iaclint

pytestmark = pytest.mark.unit

IAC = REPO_ROOT / "iac"
MODULES = iaclint.modules(IAC)
CLOUDS = ("oke", "aks", "gke")


def test_the_three_clouds_and_the_shared_module_are_there() -> None:
    found = {str(directory.relative_to(IAC)): root for directory, root in MODULES}
    assert found == {"oke": True, "aks": True, "gke": True, "modules/dapr": False}


@pytest.mark.parametrize(("directory", "root"), MODULES, ids=[str(d.relative_to(IAC)) for d, _ in MODULES])
def test_module_parses_and_is_fully_declared(directory: Path, root: bool) -> None:
    assert iaclint.check_module(directory, root=root) == []


def _dapr_call(cloud: str) -> dict[str, object]:
    module = iaclint.load(IAC / cloud)
    calls = {name: body for _, name, body in module.labelled("module")}
    return calls["dapr"]


@pytest.mark.parametrize("cloud", CLOUDS)
def test_each_cloud_installs_dapr_and_its_own_values_file_of_the_chart(cloud: str) -> None:
    call = _dapr_call(cloud)
    assert iaclint.unquote(call["source"]) == "../modules/dapr"
    assert iaclint.unquote(call["app_chart_path"]) == "${path.module}/../../charts/todo-workflows"
    assert iaclint.unquote(call["app_values_file"]) == (
        f"${{path.module}}/../../charts/todo-workflows/values-{cloud}.yaml"
    )
    # The app is opt-in: the variable behind install_app defaults to false.
    assert call["install_app"] == "${var.install_app}"
    assert iaclint.load(IAC / cloud).variables()["install_app"]["default"] is False


def test_dapr_chart_matches_the_runtime_the_app_is_built_against() -> None:
    module = iaclint.load(IAC / "modules" / "dapr")
    assert iaclint.unquote(module.variables()["dapr_version"]["default"]) == toolchain.DAPR_VERSION
    dapr = module.resources()[("helm_release", "dapr")]
    assert iaclint.unquote(dapr["repository"]) == "https://dapr.github.io/helm-charts"
    assert "mtls      = { enabled = true }" in (IAC / "modules" / "dapr" / "main.tf").read_text()
    values = dapr["values"]
    assert "ha = {enabled = var.ha_enabled}" in values
    # A scheduler memory limit comes with GOMEMLIMIT at 90 % of it, as the app chart does for daprd.
    assert 'memory = "${var.scheduler_memory_limit_mib}Mi"' in values
    assert 'GOMEMLIMIT = "${floor(var.scheduler_memory_limit_mib * 0.9)}MiB"' in values
    for cloud in CLOUDS:
        assert _dapr_call(cloud)["scheduler_memory_limit_mib"] == "${var.dapr_scheduler_memory_limit_mib}"


def test_oke_node_pool_is_the_always_free_shape() -> None:
    module = iaclint.load(IAC / "oke")
    variables = module.variables()
    assert (variables["node_count"]["default"], variables["node_ocpus"]["default"]) == (2, 2)
    assert variables["node_memory_gbs"]["default"] == 12
    pool = module.resources()[("oci_containerengine_node_pool", "this")]
    assert iaclint.unquote(pool["node_shape"]) == "VM.Standard.A1.Flex"


def test_aks_has_a_system_and_a_user_pool() -> None:
    cluster, pool = (
        iaclint.load(IAC / "aks").resources()[key]
        for key in (("azurerm_kubernetes_cluster", "this"), ("azurerm_kubernetes_cluster_node_pool", "user"))
    )
    assert iaclint.unquote(cluster["default_node_pool"][0]["name"]) == "system"
    assert cluster["default_node_pool"][0]["only_critical_addons_enabled"] is True
    assert iaclint.unquote(pool["mode"]) == "User"


def test_gke_has_a_system_and_a_user_pool() -> None:
    pools = iaclint.load(IAC / "gke").resources()[("google_container_node_pool", "pools")]
    assert set(pools["for_each"]) >= {"system", "user"}, pools["for_each"]


@pytest.mark.parametrize("cloud", ["aks", "gke"])
def test_aks_and_gke_federate_the_apps_service_account(cloud: str) -> None:
    text = "\n".join(path.read_text() for path in (IAC / cloud).glob("*.tf"))
    assert "var.app_service_account" in text and "workload_identity" in text


# --- the checker itself: each rule fires on a module that breaks it ---------------------------

GOOD_MODULE = {
    "versions.tf": """
terraform {
  required_version = ">= 1.5.0, < 2.0.0"
  required_providers {
    local = {
      source  = "hashicorp/local"
      version = ">= 2.5.0, < 3.0.0"
    }
  }
}
""",
    "variables.tf": """
variable "name" {
  type        = string
  description = "File name."
  validation {
    condition     = length(var.name) > 0
    error_message = "The name must not be empty."
  }
}
""",
    "main.tf": """
locals {
  path = "${path.module}/${var.name}"
}

resource "local_file" "this" {
  filename = local.path
  content  = "hello"
}
""",
    "outputs.tf": """
output "path" {
  description = "Where the file is."
  value       = local_file.this.filename
}
""",
    "README.md": '# m\n\n```hcl\n# terraform.tfvars\nname = "x"\n```\n',
}


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def test_a_clean_module_has_no_problems(tmp_path: Path) -> None:
    assert iaclint.check_module(_write(tmp_path / "m", GOOD_MODULE), root=True) == []


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        ("main.tf", 'content  = "hello"', "content  = var.greeting", "var.greeting is used but not declared"),
        (
            "main.tf",
            "filename = local.path",
            "filename = local.nowhere",
            "local.nowhere is used but not defined",
        ),
        ("variables.tf", '  description = "File name."\n', "", 'variable "name" has no description'),
        ("variables.tf", "  type        = string\n", "", 'variable "name" has no type'),
        (
            "variables.tf",
            "The name must not be empty.",
            "must not be empty",
            "error_message must be a sentence",
        ),
        ("outputs.tf", '  description = "Where the file is."\n', "", 'output "path" has no description'),
        (
            "versions.tf",
            '">= 2.5.0, < 3.0.0"',
            '">= 2.5.0"',
            "provider local version '>= 2.5.0' must be bounded",
        ),
        ("versions.tf", '">= 1.5.0, < 2.0.0"', '">= 1.5.0"', "required_version '>= 1.5.0' must be bounded"),
        (
            "versions.tf",
            "    local = {",
            "    other = {",
            "resources of provider 'local' but no required_providers",
        ),
        (
            "main.tf",
            'content  = "hello"',
            'content  = "hello"\n  #checkov:skip=CKV_AZURE_6',
            "a checkov skip needs",
        ),
        ("README.md", 'name = "x"', 'name = "x"\ncolour = "red"', "the example sets colour"),
        ("README.md", 'name = "x"', "", "the example leaves out name"),
        ("README.md", "# terraform.tfvars", "# example", "no example terraform.tfvars"),
    ],
)
def test_each_rule_catches_its_mistake(tmp_path: Path, file: str, old: str, new: str, expected: str) -> None:
    files = dict(GOOD_MODULE)
    assert old in files[file]
    files[file] = files[file].replace(old, new)
    problems = iaclint.check_module(_write(tmp_path / "m", files), root=True)
    assert any(expected in problem for problem in problems), problems


def test_unused_variable_and_missing_validation_are_reported(tmp_path: Path) -> None:
    files = dict(GOOD_MODULE)
    files["variables.tf"] += (
        '\nvariable "spare" {\n  type        = number\n  description = "Unused."\n'
        '  validation {\n    condition     = var.spare > 0\n    error_message = "Positive."\n  }\n}\n'
    )
    problems = iaclint.check_module(_write(tmp_path / "m", files), root=True)
    assert any('variable "spare" is declared but never used' in problem for problem in problems)

    files = dict(GOOD_MODULE)
    files["variables.tf"] = 'variable "name" {\n  type        = string\n  description = "File name."\n}\n'
    problems = iaclint.check_module(_write(tmp_path / "n", files), root=True)
    assert any("no variable has a validation block" in problem for problem in problems)


def test_module_calls_are_checked_against_the_called_module(tmp_path: Path) -> None:
    _write(tmp_path / "child", GOOD_MODULE)
    caller = dict(GOOD_MODULE)
    caller["main.tf"] += (
        '\nmodule "child" {\n  source = "../child"\n  colour = "red"\n}\n'
        'resource "local_file" "copy" {\n  filename = module.child.nothing\n  content  = "x"\n}\n'
    )
    problems = iaclint.check_module(_write(tmp_path / "caller", caller), root=True)
    assert any('module "child" has no variable "colour"' in problem for problem in problems), problems
    assert any('module "child" needs "name"' in problem for problem in problems), problems
    assert any('module "child" has no output "nothing"' in problem for problem in problems), problems


def test_a_file_that_does_not_parse_is_reported(tmp_path: Path) -> None:
    files = dict(GOOD_MODULE)
    files["main.tf"] = 'resource "local_file" "this" {\n  filename = \n'
    problems = iaclint.check_module(_write(tmp_path / "m", files), root=True)
    assert any("does not parse" in problem for problem in problems)


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        (">= 3.0.0, < 4.0.0", True),
        ("~> 4.2", True),
        ("~> 4.2.1", True),
        ("= 1.8.5", True),
        ("1.8.5", True),
        ("~> 4", False),
        (">= 3.0.0", False),
        ("< 4.0.0", False),
        ("", False),
        ("latest", False),
    ],
)
def test_bounded_version_constraints(constraint: str, expected: bool) -> None:
    assert iaclint.bounded(constraint) is expected


def test_the_readme_examples_parse_as_tfvars() -> None:
    for cloud in CLOUDS:
        example = iaclint.readme_tfvars(IAC / cloud / "README.md")
        assert example is not None
        assert "api_allowed_cidrs" in hcl2.loads(example)


# --- checkov's report and the terraform finder --------------------------------------------------


def _check(check_id: str, file_path: str, comment: str | None = None) -> dict[str, object]:
    check: dict[str, object] = {
        "check_id": check_id,
        "check_name": "a check",
        "file_path": file_path,
        "resource": "x.y",
        "file_line_range": [3, 9],
    }
    if comment is not None:
        check["check_result"] = {"result": "SKIPPED", "suppress_comment": comment}
    return check


def test_checkov_report_is_summarised_per_module() -> None:
    report = {
        "check_type": "terraform",
        "results": {
            "passed_checks": [_check("CKV_1", "/aks/main.tf"), _check("CKV_2", "/modules/dapr/main.tf")],
            "failed_checks": [_check("CKV_3", "/gke/main.tf")],
            "skipped_checks": [
                _check("CKV_4", "/oke/main.tf", "PodSecurityPolicy is gone since 1.25"),
                _check("CKV_5", "/oke/main.tf", "No comment provided"),
            ],
        },
    }
    summaries = checkov.summarise(report)
    assert (summaries["aks"].passed, summaries["modules/dapr"].passed) == (1, 1)
    assert summaries["gke"].failed == 1 and "CKV_3" in summaries["gke"].failures[0]
    assert summaries["oke"].skipped == 2
    assert summaries["oke"].unjustified_skips == ["CKV_5 (x.y)"]
    assert checkov.report(summaries, []) == 1
    assert checkov.report({"aks": summaries["aks"]}, []) == 0
    assert checkov.report({"aks": summaries["aks"]}, ["/iac/oke/main.tf"]) == 1


def _fake_terraform(path: Path, version: str) -> Path:
    path.write_text(f"#!/bin/sh\necho 'Terraform v{version}'\necho 'on linux_amd64'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_terraform_version_is_read_from_the_binary(tmp_path: Path) -> None:
    assert toolchain.terraform_version(_fake_terraform(tmp_path / "tf", "1.11.4")) == (1, 11, 4)
    assert toolchain.terraform_version(tmp_path / "missing") is None


def test_an_old_terraform_is_passed_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "old").mkdir()
    old = _fake_terraform(tmp_path / "old" / "terraform", "1.4.7")
    monkeypatch.setenv("TERRAFORM", str(old))
    monkeypatch.setenv("PATH", str(tmp_path / "old"))
    monkeypatch.setenv("TODO_CACHE_DIR", str(tmp_path / "cache"))
    assert toolchain.find(toolchain.TERRAFORM) is None

    good = tmp_path / "cache" / f"terraform-{toolchain.VERSIONS['terraform']}" / "bin"
    good.mkdir(parents=True)
    built = _fake_terraform(good / "terraform", toolchain.VERSIONS["terraform"])
    assert toolchain.find(toolchain.TERRAFORM) == built
