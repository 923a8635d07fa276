"""The MCP tools' declarations: what they teach a model is true, and failures
turn into codes. (The tools themselves run against the stack: integration.)"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from api.mcp.endpoint import _coded
from api.mcp.guide import RULE_EXAMPLES
from api.mcp.tools import TOOL_NAMES, TOOLS, AddTaskArguments, UpdateTaskArguments
from todos.core.errors import NotFound
from todos.series import recurrence
from todos.tasks.models import TaskCreate

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("phrase", "rule"), RULE_EXAMPLES)
def test_every_rule_the_descriptions_teach_is_accepted(phrase: str, rule: str) -> None:
    parsed = recurrence.parse(
        rule, timezone="America/New_York", dtstart=datetime(2026, 12, 1, 14, tzinfo=UTC)
    )
    assert recurrence.occurrences(parsed, 3), phrase


def test_the_phrase_the_issue_names_maps_to_its_rule() -> None:
    assert ("every other Tuesday", "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU") in RULE_EXAMPLES
    parsed = recurrence.parse(
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU", timezone="UTC", dtstart=datetime(2026, 12, 1, 9, tzinfo=UTC)
    )
    first, second = recurrence.occurrences(parsed, 2)
    assert (second - first).days == 14 and first.weekday() == second.weekday() == 1


def test_tools_are_the_design_contract() -> None:
    assert set(TOOL_NAMES) == {
        "add_task",
        "list_tasks",
        "complete_task",
        "reopen_task",
        "update_task",
        "delete_task",
        "preview_recurrence",
        "get_series_status",
        "skip_occurrence",
        "list_occurrences",
        "move_occurrence",
        "snooze_reminder",
        "get_profile",
        "set_profile",
    }
    for tool in TOOLS:
        assert tool.output_schema is not None, tool.name
        assert tool.annotations is not None and tool.annotations.title, tool.name


def test_body_tools_take_the_rest_body_at_the_top_level() -> None:
    add = next(tool for tool in TOOLS if tool.name == "add_task")
    assert add.parameters["properties"].keys() == TaskCreate.model_json_schema()["properties"].keys()
    validated = add.fn_metadata.validate_arguments({"title": "x", "tags": ["a"]})
    assert isinstance(validated["arguments"], AddTaskArguments)
    assert isinstance(validated["arguments"], TaskCreate)


def test_update_arguments_remember_which_fields_were_sent() -> None:
    update = next(tool for tool in TOOLS if tool.name == "update_task")
    arguments = update.fn_metadata.validate_arguments(
        {"task_id": "3f1c9a52-8f0e-4b7a-9d27-1c5e0f6b2a10", "description": None}
    )["arguments"]
    assert isinstance(arguments, UpdateTaskArguments)
    assert arguments.model_fields_set == {"task_id", "description"}


def _tool_error(cause: BaseException, unexpected: bool = False) -> ToolError:
    kind = UnexpectedToolError if unexpected else ToolError
    error = kind("Error executing tool x")
    error.__cause__ = cause
    return error


def test_failures_become_codes_a_model_can_act_on() -> None:
    with pytest.raises(ValidationError) as invalid:
        TaskCreate.model_validate({"title": "", "due_at": "2026-12-01T09:00:00"})
    code, sentence, field = _coded(_tool_error(invalid.value)) or ("", "", "")
    assert code == "INVALID_INPUT" and field is None
    assert "title" in sentence and "due_at needs a UTC offset" in sentence

    missing = NotFound("No task 1 exists for this user.", field="task_id")
    assert _coded(_tool_error(missing, unexpected=True)) == ("NOT_FOUND", missing.detail, "task_id")
    down = OperationalError("SELECT 1", {}, Exception("connection refused"))
    assert _coded(_tool_error(down, unexpected=True)) == (
        "UNAVAILABLE",
        "The database is unavailable; retry shortly.",
        None,
    )
    assert _coded(_tool_error(RuntimeError("bug"), unexpected=True)) is None
