"""The benchmark suite's bookkeeping: percentiles, goals, the Markdown table
and the generated section of docs/performance.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.harness import Figure, Goal, percentile
from bench.load import Users
from bench.report import BEGIN, END, table, value_text, write_docs

pytestmark = pytest.mark.unit


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 50
    assert percentile(values, 0.95) == 95
    assert percentile(values, 0.99) == 99
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([], 0.5) != percentile([], 0.5)  # NaN: nothing measured


@pytest.mark.parametrize(
    ("goal", "value", "status"),
    [
        (Goal("<=", 0.25), 0.25, "PASS"),
        (Goal("<=", 0.25), 0.26, "MISS"),
        (Goal(">=", 200), 57.0, "MISS"),
        (Goal("==", 0), 0, "PASS"),
        (Goal("==", 0), 3, "MISS"),
        (Goal(">=", 0.5), None, "n/a"),
        (Goal("<=", 1.0), float("nan"), "n/a"),
    ],
)
def test_each_figure_says_whether_it_met_its_goal(goal: Goal, value: float | None, status: str) -> None:
    figure = Figure("x", value, "s", {"rate_per_s": 20}).to_json()
    assert figure["status"] is None  # no goal, no verdict
    assert Figure("x", value, "s", {}, goal).to_json()["status"] == status


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0.0234, "s", "23 ms"),
        (12.5, "s", "12.5 s"),
        (57.25, "/s", "57.2/s"),
        (2512.0, "/s", "2,512/s"),
        (3 * 1024**3, "bytes", "3.00 GiB"),
        (1_114_185_728, "bytes", "1.04 GiB"),
        (300 * 1024**2, "bytes", "300.0 MiB"),
        (1000, "count", "1,000"),
        (12.34, "us", "12.3 µs"),
        (0.4, "ratio", "0.40"),
        (None, "s", "–"),
    ],
)
def test_values_read_in_their_units(value: float | None, unit: str, text: str) -> None:
    assert value_text(value, unit) == text


def results(**bench: Any) -> dict[str, Any]:
    return {
        "started_at": "2026-11-28T18:00:00+00:00",
        "finished_at": "2026-11-28T18:30:00+00:00",
        "mode": "full",
        "machine": {
            "cores": 2,
            "ram_gib": 23.5,
            "cpu_model": "AMD EPYC",
            "os": "Debian GNU/Linux 12 (bookworm)",
            "kernel": "6.1",
            "python": "3.11.2",
            "git_commit": "0123456789abcdef0123456789abcdef01234567",
            "git_dirty": False,
        },
        "load_start": [1.0, 2.0, 3.0],
        "load_end": [4.0, 5.0, 6.0],
        "benchmarks": bench,
    }


STEP = {
    "seconds": 120.0,
    "load_before": [1.0, 1.0, 1.0],
    "load_after": [2.0, 2.0, 2.0],
    "figures": [
        Figure("step p95", 0.31, "s", {"rate_per_s": 20.0, "steps": 1200}, Goal("<=", 0.25)).to_json(),
        Figure("step max throughput", 14.0, "/s", {"steps": 600}).to_json(),
    ],
}


def test_table_has_value_goal_verdict_and_conditions_per_figure() -> None:
    rows = table(results(step=STEP, events={"error": "SystemExit: no broker", **STEP})).splitlines()
    assert rows[2] == "| step | step p95 | 310 ms | ≤ 250 ms | **MISS** | rate per s 20, steps 1200 |"
    assert rows[3] == "| step | step max throughput | 14.0/s |  |  | steps 600 |"
    assert rows[4].startswith("| events | **failed** |")


def test_docs_keep_the_hand_written_text_around_the_generated_section(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    page.write_text(
        f"# Performance\n\nHow to run.\n\n{BEGIN}\nold table\n{END}\n\n## Notes\n\nMisses explained.\n"
    )
    write_docs(results(step=STEP), page)
    text = page.read_text()
    assert "old table" not in text
    assert text.startswith("# Performance\n\nHow to run.\n")
    assert text.endswith("## Notes\n\nMisses explained.\n")
    assert "2 cores (AMD EPYC), 23.5 GiB RAM, Debian GNU/Linux 12 (bookworm)" in text
    assert "1.0/2.0/3.0 at the start" in text
    assert "| step | step p95 | 310 ms |" in text


def test_docs_page_is_created_with_the_section_when_missing(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    write_docs(results(step=STEP), page)
    text = page.read_text()
    assert text.startswith("# Performance")
    assert text.count(BEGIN) == 1 and text.count(END) == 1


def test_users_take_turns_and_each_request_carries_its_users_token() -> None:
    from api.auth import decode_token
    from todos.core.settings import DEV_JWT_SECRET, Settings

    users = Users("unit", 3)
    assert len(users) == 3 and len(set(users.ids)) == 3
    assert [users.of(i) for i in range(4)] == [*users.ids, users.ids[0]]
    settings = Settings(env="dev", jwt_secret=DEV_JWT_SECRET)
    for index in range(4):
        token = users.headers_at(index)["Authorization"].removeprefix("Bearer ")
        assert decode_token(token, settings)["sub"] == users.of(index)
