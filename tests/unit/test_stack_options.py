"""The stack runner's command-line options: the API sidecar's memory budget
becomes daprd's GOMEMLIMIT, and a budget daprd cannot live in is refused with
a sentence naming the option's unit and floor."""

from __future__ import annotations

import argparse

import pytest

from devstack.sidecars import sidecar_memory_mib
from devstack.stack import Stack, StackConfig

pytestmark = pytest.mark.unit


def test_a_budget_becomes_ninety_percent_of_it_as_gomemlimit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOMEMLIMIT", raising=False)
    stack = Stack(StackConfig())
    stack._database_url = "postgresql://todo@127.0.0.1:5432/todo"
    assert stack.sidecar_env(768)["GOMEMLIMIT"] == "691MiB"
    assert "GOMEMLIMIT" not in stack.sidecar_env(None)


@pytest.mark.parametrize("text", ["768", "128"])
def test_whole_mebibytes_from_the_floor_up_are_accepted(text: str) -> None:
    assert sidecar_memory_mib(text) == int(text)


@pytest.mark.parametrize("text", ["127", "0", "-5", "768Mi", "1.5", ""])
def test_other_budgets_are_refused_with_the_unit_and_floor(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"whole number of MiB, at least 128"):
        sidecar_memory_mib(text)
