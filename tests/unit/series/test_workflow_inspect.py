"""What a failed workflow shows: its owner (GET /v1/workflows/{id}) gets the
failure's type and message; the operator (`./task wf -- status`) also gets the
stack trace, which names the code's files and lines."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from api import ops_cli
from api.app import create_app
from todos import dapr as dapr_gateway
from todos.core.settings import Settings
from todos.series.views import workflow_public

pytestmark = pytest.mark.unit

SERIES = uuid.uuid4()
NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
TRACE = (
    'Traceback (most recent call last):\n  File "/app/activities/tasks.py", line 42, in create_next\nKeyError'
)


class FakeClient:
    """The part of DaprWorkflowClient that describe() calls, answering as the SDK does."""

    def get_workflow_state(self, instance: str, *, fetch_payloads: bool) -> Any:
        return SimpleNamespace(
            instance_id=instance,
            name="recurring_task_workflow",
            runtime_status=SimpleNamespace(name="FAILED"),
            created_at=NOW.replace(tzinfo=None),
            last_updated_at=NOW.replace(tzinfo=None),
            serialized_input=None,
            serialized_output=None,
            serialized_custom_status=None,
            failure_details=SimpleNamespace(
                message="Activity task #3 failed: 'template'", error_type="TaskFailedError", stack_trace=TRACE
            ),
        )


def failed() -> dapr_gateway.WorkflowInfo:
    gateway = dapr_gateway.DaprWorkflowGateway()
    gateway._client = FakeClient()
    info = gateway.describe(f"series-{SERIES}")
    assert info is not None
    return info


def test_the_owner_sees_the_failures_type_and_message_but_no_stack_trace() -> None:
    public = workflow_public(failed(), SERIES).model_dump(mode="json")
    assert public["failure_details"] == {
        "error_type": "TaskFailedError",
        "message": "Activity task #3 failed: 'template'",
    }
    assert "activities/tasks.py" not in json.dumps(public)


def test_the_operator_still_sees_the_stack_trace() -> None:
    info = failed()
    assert ops_cli.operator_view(info)["failure_details"]["stack_trace"] == TRACE
    text = ops_cli.describe(info)
    assert "TaskFailedError" in text and 'File "/app/activities/tasks.py", line 42' in text


def test_the_public_failure_shape_is_documented() -> None:
    schemas = create_app(Settings(env="dev"), background=False).openapi()["components"]["schemas"]
    failure = schemas["WorkflowPublic"]["properties"]["failure_details"]
    (ref,) = [branch["$ref"] for branch in failure["anyOf"] if "$ref" in branch]
    documented = schemas[ref.rsplit("/", 1)[-1]]
    assert set(documented["properties"]) == {"error_type", "message"}
    assert set(documented["required"]) == {"error_type", "message"}
