"""The run's results as JSON (bench/results/latest.json) and as the Markdown
table of docs/performance.md."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

BEGIN = "<!-- bench:begin (written by `./task bench`; edit outside these markers) -->"
END = "<!-- bench:end -->"


def _bytes(value: float) -> str:
    if value >= 1024**3:
        return f"{value / 1024**3:,.2f} GiB"  # 1.04 must not read as the 1.0 goal
    for unit, size in (("MiB", 1024**2), ("KiB", 1024)):
        if value >= size:
            return f"{value / size:,.1f} {unit}"
    return f"{value:,.0f} B"


def value_text(value: float | None, unit: str) -> str:
    if value is None or math.isnan(float(value)):
        return "–"
    value = float(value)
    if unit == "s":
        return f"{value * 1000:,.0f} ms" if abs(value) < 10 else f"{value:,.1f} s"
    if unit == "/s":
        return f"{value:,.1f}/s" if value < 100 else f"{value:,.0f}/s"
    if unit == "bytes":
        return _bytes(value)
    if unit == "count":
        return f"{value:,.0f}"
    if unit == "us":
        return f"{value:,.1f} µs"
    return f"{value:,.2f}"


def goal_text(goal: dict[str, Any] | None, unit: str) -> str:
    if goal is None:
        return ""
    symbol = {"<=": "≤", ">=": "≥", "==": "="}[goal["op"]]
    return f"{symbol} {value_text(goal['target'], unit)}"


def conditions_text(conditions: dict[str, Any]) -> str:
    def one(key: str, value: Any) -> str:
        if isinstance(value, dict):
            return f"{key}: ({conditions_text(value)})"
        if isinstance(value, float):
            value = f"{value:g}"
        return f"{key.replace('_', ' ')} {value}"

    return ", ".join(one(k, v) for k, v in conditions.items())


def table(results: dict[str, Any]) -> str:
    lines = ["| benchmark | figure | value | goal | | conditions |", "|---|---|---:|---:|:---:|---|"]
    for name, bench in results["benchmarks"].items():
        if "error" in bench:
            lines.append(f"| {name} | **failed** | | | | {bench['error'][:200]} |")
            continue
        for figure in bench["figures"]:
            status = {"PASS": "PASS", "MISS": "**MISS**", "n/a": "n/a", None: ""}[figure["status"]]
            note = f"; {figure['note']}" if figure["note"] else ""
            lines.append(
                f"| {name} | {figure['name']} | {value_text(figure['value'], figure['unit'])} "
                f"| {goal_text(figure['goal'], figure['unit'])} | {status} "
                f"| {conditions_text(figure['conditions'])}{note} |"
            )
    return "\n".join(lines)


def machine_text(results: dict[str, Any]) -> str:
    m = results["machine"]
    dirty = " (with uncommitted changes)" if m["git_dirty"] else ""
    return (
        f"{m['cores']} cores ({m['cpu_model']}), {m['ram_gib']} GiB RAM, {m['os']}, Linux {m['kernel']}, "
        f"Python {m['python']}; commit `{m['git_commit'][:12]}`{dirty}; run {results['started_at']} – "
        f"{results['finished_at']} ({results['mode']}); load average (1/5/15 min) "
        f"{'/'.join(map(str, results['load_start']))} at the start, "
        f"{'/'.join(map(str, results['load_end']))} at the end. The whole stack and the load generator "
        f"share these cores."
    )


def section(results: dict[str, Any]) -> str:
    per_bench = [
        f"- {name}: {b['seconds']:.0f} s, load average {'/'.join(map(str, b['load_before']))} before, "
        f"{'/'.join(map(str, b['load_after']))} after"
        for name, b in results["benchmarks"].items()
    ]
    return "\n".join(
        [
            BEGIN,
            "",
            f"**Machine**: {machine_text(results)}",
            "",
            table(results),
            "",
            "Per benchmark:",
            "",
            *per_bench,
            "",
            END,
        ]
    )


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")


def write_docs(results: dict[str, Any], path: Path) -> None:
    """Replace the generated section of `path` (everything between the markers),
    keeping the hand-written text around it."""
    text = path.read_text() if path.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = f"{text.rstrip()}\n\n{BEGIN}\n{END}\n"
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    path.write_text(pattern.sub(lambda _: section(results), text, count=1))
