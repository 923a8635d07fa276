"""checkov over iac/, in a venv of its own, with a summary per module.

checkov pins boto3, packaging<24, networkx<2.7 and about ninety other packages: in the
project's venv they would hold back the app's own dependencies, so checkov is installed once
into the cache from tools/checkov/requirements.txt (compiled with hashes by uv).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack import progress
from devstack.paths import REPO_ROOT, cache_dir

REQUIREMENTS = REPO_ROOT / "tools" / "checkov" / "requirements.txt"
CHECKOV_VERSION = "3.3.30"
# The uv that ./task installs (keep in step with UV_VERSION there).
UV_VERSION = "0.13.9"


def venv_dir() -> Path:
    return cache_dir() / f"checkov-{CHECKOV_VERSION}"


def _requirements_digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]


def ensure() -> Path:
    """The checkov executable, installed into its venv the first time (or when the pins change)."""
    venv = venv_dir()
    executable = venv / "bin" / "checkov"
    stamp = venv / ".requirements-sha256"
    if executable.is_file() and stamp.is_file() and stamp.read_text() == _requirements_digest():
        return executable
    uv = cache_dir() / f"uv-{UV_VERSION}" / "bin" / "uv"
    if not uv.is_file():
        raise SystemExit(f"uv is missing at {uv}: run checkov through ./task, which installs it.")
    with progress.step(f"Installing checkov {CHECKOV_VERSION} into {venv} (first time only)"):
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "VIRTUAL_ENV": str(venv)}
        for command in (
            [str(uv), "venv", "--quiet", "--allow-existing", "--python", "python3", str(venv)],
            [str(uv), "pip", "sync", "--require-hashes", str(REQUIREMENTS)],
        ):
            # uv draws its own progress on stderr; let it through.
            if subprocess.run(command, env=env, check=False).returncode != 0:
                raise SystemExit(f"`{' '.join(command)}` failed")
        stamp.write_text(_requirements_digest())
    return executable


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
    executable = ensure()
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
