"""The stack runner's remedy for a sidecar wedged by an app crash (daprd
1.18.3, dapr/dapr#10408): restart the sidecar only when the restarted app's
workflow worker does not come back, and fail loudly if even that does not help."""

from __future__ import annotations

import pytest

from devstack import stack as stack_module
from devstack.process import StackError
from devstack.roles import API, Role
from devstack.stack import Stack

pytestmark = pytest.mark.unit


class Recorder:
    def __init__(self, answers: list[bool]) -> None:
        self.answers = answers
        self.restarted: list[str] = []

    def connected(self, role: Role, within: float) -> bool:
        return self.answers.pop(0)

    def restart(self, name: str, timeout: float = 60) -> None:
        self.restarted.append(name)


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> tuple[Stack, Recorder]:
    monkeypatch.setattr(stack_module.progress, "say", lambda text: None)
    return Stack(), Recorder([])


def wire(stack: Stack, recorder: Recorder, monkeypatch: pytest.MonkeyPatch, answers: list[bool]) -> None:
    recorder.answers = answers
    monkeypatch.setattr(stack, "_workflow_worker_connected", recorder.connected)
    monkeypatch.setattr(stack, "restart", recorder.restart)


def test_a_worker_that_reconnects_leaves_the_sidecar_alone(
    runner: tuple[Stack, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, recorder = runner
    wire(stack, recorder, monkeypatch, [True])
    stack._wait_workflow_worker(API, 60)
    assert recorder.restarted == [] and stack.wedged_sidecar_restarts == 0


def test_a_wedged_sidecar_is_restarted_once_and_counted(
    runner: tuple[Stack, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, recorder = runner
    wire(stack, recorder, monkeypatch, [False, True])
    stack._wait_workflow_worker(API, 60)
    assert recorder.restarted == ["daprd-api"] and stack.wedged_sidecar_restarts == 1


def test_a_worker_still_missing_after_the_restart_fails_the_stack(
    runner: tuple[Stack, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, recorder = runner
    wire(stack, recorder, monkeypatch, [False, False])
    with pytest.raises(StackError, match="did not reconnect"):
        stack._wait_workflow_worker(API, 60)


def test_a_second_replicas_wedged_sidecar_is_the_one_restarted(
    runner: tuple[Stack, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, recorder = runner
    wire(stack, recorder, monkeypatch, [False, True])
    stack._wait_workflow_worker(Role("api", "todo-api", replica=2), 60)
    assert recorder.restarted == ["daprd-api-2"]
