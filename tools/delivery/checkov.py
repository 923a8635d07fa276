"""checkov, from the toolchain, offline: one scan for every check that runs it (`scan`), and the
summary of its JSON report, grouped per Terraform module for iac/ (`run`, `report`) or as the
chart check wants it."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack import progress, toolchain

# No network here: no Prisma Cloud mapping or metadata, no external module downloads.
_FLAGS = ("--output", "json", "--compact", "--skip-download", "--download-external-modules", "false")
_ENV = {"BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}


def scan(framework: str, target: list[str], cwd: Path | None = None) -> list[dict[str, Any]]:
    """checkov's reports of one framework over target (`--directory D` or `--file F`)."""
    command = [str(toolchain.ensure(toolchain.CHECKOV)), *target, "--framework", framework, *_FLAGS]
    out = subprocess.run(
        command, capture_output=True, text=True, cwd=cwd, env={**os.environ, **_ENV}, check=False
    )
    # Exit 1 means "failed checks"; anything else without JSON is checkov itself failing.
    try:
        parsed = json.loads(out.stdout)
    except json.JSONDecodeError:
        raise SystemExit(
            f"checkov ({framework}) failed (exit {out.returncode}):\n{out.stderr[-4000:]}{out.stdout[-2000:]}"
        ) from None
    reports = parsed if isinstance(parsed, list) else [parsed]
    # A framework with nothing to report on gives a report without a check_type.
    return [report for report in reports if report.get("check_type") in (None, framework)]


@dataclass
class Summary:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)
    # "CKV_X (reason)" for each skip; the ones without a reason again in unjustified_skips.
    skips: list[str] = field(default_factory=list)
    unjustified_skips: list[str] = field(default_factory=list)

    def add(self, other: Summary) -> None:
        self.passed += other.passed
        self.failed += other.failed
        self.skipped += other.skipped
        self.failures += other.failures
        self.skips += other.skips
        self.unjustified_skips += other.unjustified_skips


def module_of(file_path: str) -> str:
    """The module of a checkov result: "/oke/main.tf" -> "oke", "/modules/dapr/x.tf" -> "modules/dapr"."""
    parts = Path(file_path.lstrip("/")).parts
    return "/".join(parts[:2]) if parts[0] == "modules" else parts[0]


def summarise(report: dict[str, Any], group: Callable[[str], str] = module_of) -> dict[str, Summary]:
    """Counts and findings from one checkov report, per group of the file each result is in."""
    summaries: dict[str, Summary] = {}
    results = report.get("results", {})
    for check in results.get("passed_checks", []):
        summaries.setdefault(group(check["file_path"]), Summary()).passed += 1
    for check in results.get("failed_checks", []):
        summary = summaries.setdefault(group(check["file_path"]), Summary())
        summary.failed += 1
        summary.failures.append(
            f"{check['check_id']} {check['check_name']} ({check['resource']}, "
            f"{check['file_path'].lstrip('/')}:{check['file_line_range'][0]})"
        )
    for check in results.get("skipped_checks", []):
        summary = summaries.setdefault(group(check["file_path"]), Summary())
        summary.skipped += 1
        reason = (check.get("check_result") or {}).get("suppress_comment") or check.get("suppress_comment")
        summary.skips.append(f"{check['check_id']} ({reason})")
        if not reason or reason.strip().lower() in ("", "no comment provided"):
            summary.unjustified_skips.append(f"{check['check_id']} ({check['resource']})")
    return summaries


def run(iac_dir: Path, module_names: list[str]) -> tuple[dict[str, Summary], list[str]]:
    """checkov over iac_dir: a summary for each of module_names (and any other module checkov
    reports on), and the files it could not parse."""
    toolchain.ensure(toolchain.CHECKOV)  # installed before the timed step, if it must be
    with progress.step(f"checkov over {iac_dir}"):
        reports = scan("terraform", ["--directory", str(iac_dir)])
    summaries = {name: Summary() for name in module_names}
    errors: list[str] = []
    for report in reports:
        for name, summary in summarise(report).items():
            summaries.setdefault(name, Summary()).add(summary)
        errors += [str(path) for path in report.get("results", {}).get("parsing_errors", [])]
    return summaries, errors


def report(summaries: dict[str, Summary], errors: list[str]) -> int:
    """Print the summary table and what went wrong; 0 when nothing failed."""
    totals: Counter[str] = Counter()
    progress.say(f"{'module':<16}{'passed':>8}{'failed':>8}{'skipped':>9}")
    for name in sorted(summaries):
        summary = summaries[name]
        totals.update(passed=summary.passed, failed=summary.failed, skipped=summary.skipped)
        progress.say(f"{name:<16}{summary.passed:>8}{summary.failed:>8}{summary.skipped:>9}")
    progress.say(f"{'total':<16}{totals['passed']:>8}{totals['failed']:>8}{totals['skipped']:>9}")
    problems = [f"  parsing error: {path}" for path in errors]
    for name in sorted(summaries):
        problems += [f"  {name}: FAILED {line}" for line in summaries[name].failures]
        problems += [f"  {name}: skip without a reason: {line}" for line in summaries[name].unjustified_skips]
    if problems:
        progress.say("checkov found problems:\n" + "\n".join(problems))
        return 1
    return 0
