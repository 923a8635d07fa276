"""Every history in tests/data/histories (real histories, captured from a
running stack by `./task histories`) replays against today's workflow code
through the SDK's own orchestration executor: a change that would take
another path through a recorded generation fails here, before a deploy
finds it in a live series (CONTRIBUTING.md says what to do then)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from dapr.ext.workflow import DaprWorkflowContext
from dapr.ext.workflow._durabletask.internal import protos
from dapr.ext.workflow._durabletask.worker import _OrchestrationExecutor, _Registry
from google.protobuf.json_format import ParseDict

from todos.series.contract import WORKFLOW_NAME, SeriesState
from workflows.recurring import recurring_task_workflow

pytestmark = pytest.mark.unit

CORPUS = Path(__file__).parents[2] / "data" / "histories"
HISTORIES = sorted(CORPUS.glob("*.json"))


def replay(recorded: dict[str, Any]) -> list[protos.OrchestratorAction]:
    """The actions today's code takes after the recorded events: all but the
    last turn as the old events (replayed), the last turn as the new ones."""
    events = [ParseDict(event, protos.HistoryEvent()) for event in recorded["events"]]
    last_turn = max(i for i, event in enumerate(events) if event.HasField("workflowStarted"))
    registry = _Registry()
    registry.add_named_orchestrator(
        WORKFLOW_NAME,
        lambda ctx, state: recurring_task_workflow(
            DaprWorkflowContext(ctx), SeriesState.model_validate(state)
        ),
    )
    executor = _OrchestrationExecutor(registry, logging.getLogger("replay"))
    return list(executor.execute(recorded["instance_id"], events[:last_turn], events[last_turn:]).actions)


def test_the_corpus_covers_every_path_and_both_step_shapes() -> None:
    names = {path.stem for path in HISTORIES}
    for shape in (1, 2):
        assert {
            f"shape{shape}-{path}" for path in ("started-waiting", "step-creating", "skipped-creating")
        } <= names
    assert {
        "sdk-waits-step-creating",
        "paused-loading",
        "stopped",
        "finished-count",
        "finished-until",
    } <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[path.stem for path in HISTORIES])
def test_a_recorded_history_replays_on_todays_code(path: Path) -> None:
    recorded = json.loads(path.read_text())
    for action in replay(recorded):
        if action.HasField("completeWorkflow"):
            done = action.completeWorkflow
            assert done.workflowStatus != protos.ORCHESTRATION_STATUS_FAILED, (
                f"{path.name} ({recorded['path']}) no longer replays: "
                f"{done.failureDetails.errorType}: {done.failureDetails.errorMessage}"
            )
