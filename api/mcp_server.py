"""The MCP server the chatbot calls: tools over streamable HTTP at /mcp.

Every tool is a thin translation to the same `TaskService` the REST routes
call (`request.app.state.service`), so the rules live in one place. The user
is the `sub` of the HTTP request's bearer token, checked by `McpEndpoint`
before the SDK sees the request; no tool takes a user argument.

Design choices:
- Stateless streamable HTTP with JSON responses: each POST carries a
  complete exchange, so any replica behind a Kubernetes Service can answer
  any request (no sticky sessions), and the tools need nothing from the
  client mid-call.
- Tool arguments are the REST bodies: add_task's arguments are exactly a
  `POST /v1/tasks` body, validated by the same model (`TaskCreate`).
- A tool error is a result with `isError` whose text reads
  `CODE: sentence` (the codes of the REST problem documents) and whose
  `_meta["todo-workflows/error"]` holds `{code, field}` for programs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import CallToolResult, InputRequiredResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from api.auth import Unauthorized, user_from_authorization
from api.metrics import MCP_TOOL_CALLS
from api.observe import LOG_FIELDS_KEY
from api.problems import database_unavailable, problem, validation_errors
from todos import logs
from todos.errors import DomainError
from todos.models import (
    PreviewRequest,
    PreviewResponse,
    ReminderPublic,
    SeriesPublic,
    TaskCreate,
    TaskFilter,
    TaskPage,
    TaskPublic,
    TaskUpdate,
)
from todos.service import TaskQuery, TaskService, User
from todos.settings import Settings

PATH = "/mcp"
# Where McpEndpoint leaves the authenticated user for the tools (an ASGI scope key).
_USER_KEY = "todo.user"
ERROR_META_KEY = "todo-workflows/error"

# Phrases a user says and the rule that means it. Rendered into the tool
# descriptions; tests/unit/test_mcp_tools.py checks that every rule parses.
RULE_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("every day", "daily"),
    ("every weekday / weekdays at 9", "weekdays"),
    ("every Monday, Wednesday and Friday", "FREQ=WEEKLY;BYDAY=MO,WE,FR"),
    ("every other Tuesday", "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU"),
    ("every 3 days", "every 3 days"),
    ("every 2 hours", "FREQ=HOURLY;INTERVAL=2"),
    ("on the 15th of every month", "FREQ=MONTHLY;BYMONTHDAY=15"),
    ("on the last day of the month", "FREQ=MONTHLY;BYMONTHDAY=-1"),
    ("on the first Monday of the month", "FREQ=MONTHLY;BYDAY=1MO"),
    ("on the last Friday of the month", "FREQ=MONTHLY;BYDAY=-1FR"),
    ("every year on the due date", "yearly"),
    ("daily, 10 times", "FREQ=DAILY;COUNT=10"),
    ("weekly until the end of June 2027", "FREQ=WEEKLY;UNTIL=20270630T235959Z"),
)

RULE_GUIDE = (
    "Recurrence: `recurrence.rule` is an RFC 5545 RRULE or a simple pattern (daily, weekdays, weekly, "
    "monthly, yearly, every N days/weeks/months, last day of month). Turn what the user says into a rule:\n"
    + "\n".join(f'- "{phrase}" -> {rule}' for phrase, rule in RULE_EXAMPLES)
    + '\nThe first occurrence is `due_at` and its wall-clock time repeats, so "weekdays at 9" is rule '
    "`weekdays` with due_at at 09:00. Set `recurrence.timezone` to the user's IANA zone (e.g. "
    "America/New_York): occurrences keep 09:00 local across daylight-saving changes. Give due_at with its "
    "UTC offset (2026-12-01T09:00:00-05:00). `recurrence.basis` is `schedule` (default: follow the "
    'calendar) or `completion` ("3 days after I last did it"). Rules may not repeat more often than the '
    "configured minimum (1 hour by default). Do not put DTSTART in the rule. When a phrase is unusual or "
    "you are unsure the rule means what the user said, call preview_recurrence first and read the dates "
    "back to the user."
)

INSTRUCTIONS = (
    "Todo list with due dates, reminders and recurring tasks. Each recurring task is a series: completing "
    "its current occurrence creates the next one (list_tasks shows it a moment later). Ids come from "
    "earlier results (add_task, list_tasks); never invent one. Errors start with a code such as "
    "NOT_FOUND or INVALID_RECURRENCE_RULE, followed by a sentence saying what to change.\n\n" + RULE_GUIDE
)


class DeletedTask(BaseModel):
    deleted: bool = Field(description="Always true: the task is gone.")
    task_id: uuid.UUID
    scope: Literal["occurrence", "series"]


# ---- who is calling ---------------------------------------------------------------


def _caller(ctx: Context[Any, Any]) -> tuple[TaskService, User]:
    request = ctx.request_context.request
    if not isinstance(request, Request):
        raise Unauthorized("This server only serves tools over HTTP with a bearer token.")
    user = request.scope.get(_USER_KEY)
    if not isinstance(user, User):
        raise Unauthorized("Send `Authorization: Bearer <JWT>`; the token's `sub` is the user.")
    # Tools run in the session manager's tasks, not the request's: log in its scope.
    logs.adopt(request.scope.get(LOG_FIELDS_KEY, {}))
    service: TaskService = request.app.state.service
    return service, user


# ---- errors ------------------------------------------------------------------------


def error_result(code: str, message: str, field: str | None = None) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=f"{code}: {message}")],
        is_error=True,
        _meta={ERROR_META_KEY: {"code": code, "field": field}},
    )


def _coded(error: ToolError) -> tuple[str, str, str | None] | None:
    """(code, sentence, field) of a failure the caller can act on; None for a crash."""
    cause = error.__cause__
    if isinstance(cause, ValidationError):
        errors = validation_errors(list(cause.errors()))
        detail = "; ".join(f"{e['field']} {e['message']}" for e in errors) + "."
        return "INVALID_INPUT", detail, errors[0]["field"] if len(errors) == 1 else None
    if isinstance(cause, DomainError):
        return cause.code, cause.detail, cause.field
    down = database_unavailable(cause) if cause is not None else None
    if down is not None:
        return down.code, down.detail, None
    return None


class TodoMCPServer(MCPServer[Any]):
    """MCPServer whose tool failures carry the service's error codes."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        if name not in TOOL_NAMES:
            MCP_TOOL_CALLS.labels("unknown", "UNKNOWN_TOOL").inc()
            return error_result(
                "UNKNOWN_TOOL", f"There is no tool {name[:100]!r}; the tools are {', '.join(TOOL_NAMES)}."
            )
        try:
            result = await super().call_tool(name, arguments, context)
        except ToolError as error:
            coded = _coded(error)
            MCP_TOOL_CALLS.labels(name, coded[0] if coded else "INTERNAL").inc()
            if coded is None:
                raise
            return error_result(*coded)
        MCP_TOOL_CALLS.labels(name, "ok").inc()
        return result


# ---- tools -------------------------------------------------------------------------


class _BodyArguments(ArgModelBase):
    """Tool arguments that are a REST body: the tool function receives the
    validated body as one object, so which fields were sent (PATCH
    semantics) survives."""

    def model_dump_one_level(self) -> dict[str, Any]:
        return {"arguments": self}


class AddTaskArguments(TaskCreate, _BodyArguments):
    pass


class UpdateTaskArguments(TaskUpdate, _BodyArguments):
    task_id: uuid.UUID = Field(description="The task to change (its `id`).")


class PreviewArguments(PreviewRequest, _BodyArguments):
    pass


class ListTasksArguments(TaskFilter, _BodyArguments):  # type: ignore[misc]  # both bases configure pydantic
    pass


def add_task(arguments: AddTaskArguments, ctx: Context[Any, Any]) -> TaskPublic:
    service, user = _caller(ctx)
    return service.create_task(user, arguments)


def list_tasks(arguments: ListTasksArguments, ctx: Context[Any, Any]) -> TaskPage:
    service, user = _caller(ctx)
    return service.list_tasks(user, TaskQuery(**arguments.model_dump()))


def complete_task(task_id: uuid.UUID, ctx: Context[Any, Any]) -> TaskPublic:
    service, user = _caller(ctx)
    return service.complete_task(user, task_id)


def update_task(arguments: UpdateTaskArguments, ctx: Context[Any, Any]) -> TaskPublic:
    service, user = _caller(ctx)
    changes = TaskUpdate.model_validate(arguments.model_dump(exclude_unset=True, exclude={"task_id"}))
    return service.update_task(user, arguments.task_id, changes)


def delete_task(
    task_id: uuid.UUID,
    ctx: Context[Any, Any],
    scope: Literal["occurrence", "series"] = "occurrence",
) -> DeletedTask:
    service, user = _caller(ctx)
    service.delete_task(user, task_id, scope)
    return DeletedTask(deleted=True, task_id=task_id, scope=scope)


def preview_recurrence(arguments: PreviewArguments, ctx: Context[Any, Any]) -> PreviewResponse:
    service, _ = _caller(ctx)
    preview = service.preview(arguments.rule, arguments.dtstart, arguments.timezone, arguments.limit)
    return PreviewResponse(occurrences=preview.occurrences, text=preview.text)


def get_series_status(series_id: uuid.UUID, ctx: Context[Any, Any]) -> SeriesPublic:
    service, user = _caller(ctx)
    return service.get_series(user, series_id)


def skip_occurrence(task_id: uuid.UUID, ctx: Context[Any, Any]) -> SeriesPublic:
    service, user = _caller(ctx)
    return service.skip_occurrence(user, task_id)


def snooze_reminder(
    task_id: uuid.UUID,
    ctx: Context[Any, Any],
    minutes: Annotated[int, Field(ge=1, le=1440, description="Minutes from now, 1-1440.")],
) -> ReminderPublic:
    service, user = _caller(ctx)
    return service.snooze_reminder(user, task_id, minutes)


def _tool(
    fn: Callable[..., Any],
    title: str,
    description: str,
    *,
    read_only: bool = False,
    destructive: bool = False,
    idempotent: bool = False,
    body: type[_BodyArguments] | None = None,
) -> Tool:
    tool = Tool.from_function(
        fn,
        title=title,
        description=description,
        annotations=ToolAnnotations(
            title=title,
            read_only_hint=read_only,
            destructive_hint=None if read_only else destructive,
            idempotent_hint=None if read_only else idempotent,
            open_world_hint=False,
        ),
        structured_output=True,
    )
    if body is not None:
        # The arguments are the body's fields at the top level, not nested
        # under "arguments" (FuncMetadata reads these fields on every call).
        tool.fn_metadata.arg_model = body
        tool.parameters = body.model_json_schema(by_alias=True)
    return tool


TOOLS: tuple[Tool, ...] = (
    _tool(
        add_task,
        "Add a task",
        "Create a task for the user: a title, optional description, priority (low/medium/high), tags, "
        "due_at (RFC 3339 with offset), reminders ([{before: ISO 8601 duration like PT15M}] or "
        "[{at: RFC 3339}]) and, for a repeating task, recurrence {rule, timezone, basis}. A recurring task "
        "is occurrence #1 of a new series; its result has `series_id`.\n\n" + RULE_GUIDE,
        body=AddTaskArguments,
    ),
    _tool(
        list_tasks,
        "List tasks",
        "The user's tasks, oldest first, a page at a time. Filters: status (pending, completed or all; use "
        "pending for what is still to do), due_before/due_after (RFC 3339), series_id (the occurrences of "
        "one recurring task), tag. Pass `next_cursor` from the previous page as `cursor` for more.",
        read_only=True,
        body=ListTasksArguments,
    ),
    _tool(
        complete_task,
        "Complete a task",
        "Mark a task done (completing it again changes nothing). For a recurring task the series then "
        "creates the next occurrence, which list_tasks shows a moment later.",
        idempotent=True,
    ),
    _tool(
        update_task,
        "Update a task",
        "Change some fields of a task: pass task_id and only the fields to change (null clears description "
        "or due_at). A new `recurrence` makes a one-off task repeat, or changes a series' rule from the "
        "current occurrence on; to stop repeating use delete_task with scope=series.\n\n" + RULE_GUIDE,
        destructive=True,
        idempotent=True,
        body=UpdateTaskArguments,
    ),
    _tool(
        delete_task,
        "Delete a task",
        "Delete a task. For a recurring task, scope=occurrence (default) removes only this occurrence and "
        "the series moves on to the next one; scope=series stops the whole series. Confirm with the user "
        "before deleting a series.",
        destructive=True,
    ),
    _tool(
        preview_recurrence,
        "Preview a recurrence rule",
        "The next occurrences of a rule (UTC, RFC 3339) and a sentence describing it, without saving "
        "anything. dtstart is the first occurrence; without a UTC offset it is wall time in `timezone`. "
        "Use it to check a rule before add_task or update_task.\n\n" + RULE_GUIDE,
        read_only=True,
        body=PreviewArguments,
    ),
    _tool(
        get_series_status,
        "Recurring series status",
        "A recurring series (series_id from a task): its rule in words, timezone, basis, status (active, "
        "paused, stopped, finished), current task, next due time, occurrences created so far, and its "
        "workflow's runtime and custom status.",
        read_only=True,
    ),
    _tool(
        skip_occurrence,
        "Skip an occurrence",
        "Skip the current occurrence of a recurring task (task_id of that occurrence): it is marked "
        "skipped, not done, and the series creates the next one. Returns the series. A task that is no "
        "longer the current occurrence (say, on a retry after the series moved on) is refused with "
        "CONFLICT naming the current one: nothing else is skipped.",
    ),
    _tool(
        snooze_reminder,
        "Snooze a reminder",
        "Send the task's most recently sent reminder again `minutes` from now (1-1440), e.g. after the user "
        'says "remind me again in 10 minutes". Only a reminder that already went out can be snoozed; '
        "to change when future reminders fire, use update_task with new `reminders` or `due_at`.",
        idempotent=False,
    ),
)


TOOL_NAMES = tuple(tool.name for tool in TOOLS)


def build_server() -> TodoMCPServer:
    return TodoMCPServer(
        "todo-workflows",
        title="Todo workflows",
        instructions=INSTRUCTIONS,
        version="1.0.0",
        tools=list(TOOLS),
    )


# ---- HTTP --------------------------------------------------------------------------


class McpEndpoint:
    """The ASGI app at /mcp: authenticate, then hand over to the SDK's
    session manager, which checks Host/Origin against the settings."""

    def __init__(self, settings: Settings, server: TodoMCPServer | None = None) -> None:
        self.settings = settings
        self.server = server or build_server()
        # Builds the session manager; the Starlette app it returns is not
        # used because the endpoint is a route of the FastAPI app instead.
        self.server.streamable_http_app(
            streamable_http_path=PATH,
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=list(settings.mcp_allowed_hosts),
                allowed_origins=list(settings.mcp_allowed_origins),
            ),
        )
        self.session_manager = self.server.session_manager

    def route(self) -> Route:
        return Route(PATH, endpoint=self, include_in_schema=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        header = Headers(scope=scope).get("authorization")
        try:
            # A JWKS lookup may block on the network: keep it off the event loop.
            user = await anyio.to_thread.run_sync(user_from_authorization, header, self.settings)
        except Unauthorized as error:
            await problem(401, error.detail, code=error.code)(scope, receive, send)
            return
        scope[_USER_KEY] = user
        logs.annotate(user_id=user.id)
        await self.session_manager.handle_request(scope, receive, send)
