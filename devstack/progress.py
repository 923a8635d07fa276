"""Readable progress lines for long steps, on stderr so stdout stays parseable."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def step(title: str) -> Iterator[None]:
    """Print what starts, then how long it took (or that it failed)."""
    started = time.monotonic()
    say(f"==> {title}")
    try:
        yield
    except BaseException:
        say(f"<== {title}: failed after {time.monotonic() - started:.1f}s")
        raise
    say(f"<== {title}: done in {time.monotonic() - started:.1f}s")


class Counter:
    """A one-line counter ("  compiling 120/2498 (4%)") that redraws on a TTY
    and otherwise prints every tenth of the way, or after a quiet half
    minute (a loaded machine can take many minutes per tenth), so CI logs stay
    short and never look stuck."""

    QUIET_SECONDS = 30.0

    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = max(total, 1)
        self.done = 0
        self._last_decile = -1
        self._tty = sys.stderr.isatty()
        self._last_said = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.done += n
        percent = min(100, self.done * 100 // self.total)
        line = f"    {self.label} {self.done}/{self.total} ({percent}%)"
        if self._tty:
            sys.stderr.write("\r" + line)
            sys.stderr.flush()
        elif percent // 10 != self._last_decile or time.monotonic() - self._last_said >= self.QUIET_SECONDS:
            self._last_decile = percent // 10
            self._last_said = time.monotonic()
            say(line)

    def finish(self) -> None:
        if self._tty:
            sys.stderr.write("\n")
            sys.stderr.flush()
