"""The step cost account's arithmetic: growth per step net of the stack at
rest, and the busiest frames of a py-spy profile."""

from __future__ import annotations

import pytest

from bench.account import Reading, busiest_frames, per_step

pytestmark = pytest.mark.unit


def reading(at: float, cpu: dict[str, float], **counts: float) -> Reading:
    return Reading(at, cpu, counts)


def test_per_step_takes_away_what_the_stack_spends_at_rest_over_as_long() -> None:
    # At rest: the app burns 0.1 s of CPU and runs 2 statements per 10 s.
    rest = (reading(0, {"app": 1.0}, sql=100), reading(10, {"app": 1.1}, sql=102))
    # 100 steps over 20 s: 4.2 s of CPU and 704 statements, of which 0.2 s and 4 are the rest's.
    before, after = reading(50, {"app": 2.0}, sql=200), reading(70, {"app": 6.2}, sql=904)
    account = per_step(rest, before, after, steps=100)
    assert account["cpu_seconds"] == {"app": pytest.approx(0.04)}
    assert account["counts"] == {"sql": pytest.approx(7.0)}


def test_per_step_leaves_out_counters_that_did_not_move_and_counts_new_ones() -> None:
    rest = (reading(0, {}, quiet=5), reading(10, {}, quiet=5))
    account = per_step(rest, reading(0, {}, quiet=5), reading(10, {}, quiet=5, fresh=30), steps=10)
    assert account["counts"] == {"fresh": pytest.approx(3.0)}


def test_busiest_frames_share_own_and_total_samples() -> None:
    collapsed = "\n".join(
        [
            "main (app.py:1);handle (api.py:9);execute (db.py:3) 6",
            "main (app.py:1);handle (api.py:9);encode (json.py:2) 3",
            "main (app.py:1);idle (loop.py:5) 1",
            "not a sample line",
        ]
    )
    frames = busiest_frames(collapsed)
    assert frames["samples"] == 10
    assert frames["own"] == [
        ("execute (db.py:3)", 0.6),
        ("encode (json.py:2)", 0.3),
        ("idle (loop.py:5)", 0.1),
    ]
    # The root frame is on every stack: it says nothing, so it is left out.
    assert frames["total"][0] == ("handle (api.py:9)", 0.9)
    assert all(frame != "main (app.py:1)" for frame, _ in frames["total"])


def test_busiest_frames_of_an_empty_profile() -> None:
    assert busiest_frames("") == {"samples": 0, "own": [], "total": []}
