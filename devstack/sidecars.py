"""A sidecar's memory budget, as the chart sets it: daprd's GOMEMLIMIT is a share of it."""

from __future__ import annotations

import argparse

# daprd's GOMEMLIMIT as a share of its memory budget: the chart's
# dapr.sidecar.goMemLimitPercent (tests/chart/test_app_alignment.py).
GO_MEMLIMIT_PERCENT = 90
# daprd alone takes about 100 MiB before it hosts a workflow.
MIN_SIDECAR_MEMORY_MIB = 128


def go_memlimit(memory_mib: int) -> str:
    """daprd's GOMEMLIMIT for a memory budget, as the chart's todo.sidecarEnv writes it."""
    return f"{memory_mib * GO_MEMLIMIT_PERCENT // 100}MiB"


def sidecar_memory_mib(text: str) -> int:
    """A sidecar memory budget in MiB, as a command-line option gives it."""
    try:
        mib = int(text)
    except ValueError:
        mib = 0
    if mib < MIN_SIDECAR_MEMORY_MIB:
        raise argparse.ArgumentTypeError(
            f"a sidecar memory budget is a whole number of MiB, at least {MIN_SIDECAR_MEMORY_MIB} "
            f"(daprd alone takes about 100): got {text!r}"
        )
    return mib
