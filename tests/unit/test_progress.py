"""The progress counter keeps CI logs short without looking stuck."""

from __future__ import annotations

import pytest

from devstack import progress
from tests.helpers import ManualClock

pytestmark = pytest.mark.unit


def test_counter_prints_each_tenth_and_after_a_quiet_half_minute(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = ManualClock(1000.0)
    monkeypatch.setattr(progress.time, "monotonic", clock)
    counter = progress.Counter("compiling", 100)

    counter.advance()  # 1%: the first line
    counter.advance()  # 2%: same tenth, soon after: silent
    clock.now += progress.Counter.QUIET_SECONDS
    counter.advance()  # 3%: same tenth, but quiet for half a minute
    counter.advance(7)  # 10%: a new tenth
    counter.finish()

    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "    compiling 1/100 (1%)",
        "    compiling 3/100 (3%)",
        "    compiling 10/100 (10%)",
    ]
