"""checkov over iac/, with a summary per module (checkov itself comes from the toolchain)."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack import progress, toolchain


@dataclass
class ModuleSummary:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)
    unjustified_skips: list[str] = field(default_factory=list)


def module_of(file_path: str) -> str:
    """The module of a checkov result: "/oke/main.tf" -> "oke", "/modules/dapr/x.tf" -> "modules/dapr"."""
    parts = Path(file_path.lstrip("/")).parts
    return "/".join(parts[:2]) if parts[0] == "modules" else parts[0]


def summarise(report: dict[str, Any]) -> dict[str, ModuleSummary]:
    """Per-module counts from checkov's JSON report of one directory (framework terraform)."""
    summaries: dict[str, ModuleSummary] = {}
    results = report.get("results", {})
    for check in results.get("passed_checks", []):
        summaries.setdefault(module_of(check["file_path"]), ModuleSummary()).passed += 1
    for check in results.get("failed_checks", []):
        summary = summaries.setdefault(module_of(check["file_path"]), ModuleSummary())
        summary.failed += 1
        summary.failures.append(
            f"{check['check_id']} {check['check_name']} ({check['resource']}, "
            f"{check['file_path'].lstrip('/')}:{check['file_line_range'][0]})"
        )
    for check in results.get("skipped_checks", []):
        summary = summaries.setdefault(module_of(check["file_path"]), ModuleSummary())
        summary.skipped += 1
        reason = (check.get("check_result") or {}).get("suppress_comment") or check.get("suppress_comment")
        if not reason or reason.strip().lower() in ("", "no comment provided"):
            summary.unjustified_skips.append(f"{check['check_id']} ({check['resource']})")
    return summaries


def run(iac_dir: Path, module_names: list[str]) -> tuple[dict[str, ModuleSummary], list[str]]:
    """Run checkov over iac_dir; a summary for each of module_names (and any other module
    checkov reports on), and any parsing errors."""
    executable = toolchain.ensure(toolchain.CHECKOV)
    command = [
        str(executable),
        "--directory",
        str(iac_dir),
        "--framework",
        "terraform",
        "--output",
        "json",
        "--compact",
        # No network here: no Prisma Cloud metadata, no external module downloads.
        "--skip-download",
        "--download-external-modules",
        "false",
    ]
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    with progress.step(f"checkov over {iac_dir}"):
        out = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    # Exit 1 means "failed checks"; anything else without JSON is checkov itself failing.
    try:
        parsed = json.loads(out.stdout)
    except json.JSONDecodeError:
        raise SystemExit(
            f"checkov failed (exit {out.returncode}):\n{out.stderr[-4000:]}{out.stdout[-2000:]}"
        ) from None
    reports = parsed if isinstance(parsed, list) else [parsed]
    summaries = {name: ModuleSummary() for name in module_names}
    errors: list[str] = []
    for report in reports:
        if report.get("check_type") not in (None, "terraform"):
            continue
        for name, summary in summarise(report).items():
            total = summaries.setdefault(name, ModuleSummary())
            total.passed += summary.passed
            total.failed += summary.failed
            total.skipped += summary.skipped
            total.failures += summary.failures
            total.unjustified_skips += summary.unjustified_skips
        errors += [str(path) for path in report.get("results", {}).get("parsing_errors", [])]
    return summaries, errors


def report(summaries: dict[str, ModuleSummary], errors: list[str]) -> int:
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
