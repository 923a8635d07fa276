"""The chatbot's tools: each a thin translation to the services the REST
routes call, with the REST bodies as arguments and the REST resources as
structured results. The user is the bearer token's `sub`, which the endpoint
(api.mcp.endpoint) checked and left in the request's scope; no tool takes a
user argument."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field
from starlette.requests import Request

from api.auth import Unauthorized
from api.deps import Services
from api.mcp.guide import RULE_GUIDE
from api.observe import LOG_FIELDS_KEY
from todos.core import logs
from todos.core.fields import UtcDatetime
from todos.core.users import User
from todos.profiles.models import ProfilePublic, ProfileUpdate
from todos.reminders.models import ReminderPublic
from todos.series.coming import MAX_LISTED, OccurrencesPublic
from todos.series.models import PreviewRequest, PreviewResponse, WallOrInstant
from todos.series.views import SeriesPublic
from todos.tasks.models import TaskCreate, TaskFilter, TaskPage, TaskPublic, TaskUpdate
from todos.tasks.service import TaskQuery

# Where the endpoint leaves the authenticated user for the tools (an ASGI scope key).
USER_KEY = "todo.user"


class DeletedTask(BaseModel):
    deleted: bool = Field(description="Always true: the task is gone.")
    task_id: uuid.UUID
    scope: Literal["occurrence", "series"]


# ---- who is calling ---------------------------------------------------------------


def caller(ctx: Context[Any, Any]) -> tuple[Services, User]:
    request = ctx.request_context.request
    if not isinstance(request, Request):
        raise Unauthorized("This server only serves tools over HTTP with a bearer token.")
    user = request.scope.get(USER_KEY)
    if not isinstance(user, User):
        raise Unauthorized("Send `Authorization: Bearer <JWT>`; the token's `sub` is the user.")
    # Tools run in the session manager's tasks, not the request's: log in its scope.
    logs.adopt(request.scope.get(LOG_FIELDS_KEY, {}))
    services: Services = request.app.state.services
    return services, user


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
    services, user = caller(ctx)
    return services.tasks.create_task(user, arguments)


def list_tasks(arguments: ListTasksArguments, ctx: Context[Any, Any]) -> TaskPage:
    services, user = caller(ctx)
    return services.tasks.list_tasks(user, TaskQuery(**arguments.model_dump()))


def complete_task(task_id: uuid.UUID, ctx: Context[Any, Any]) -> TaskPublic:
    services, user = caller(ctx)
    return services.tasks.complete_task(user, task_id)


def reopen_task(task_id: uuid.UUID, ctx: Context[Any, Any]) -> TaskPublic:
    services, user = caller(ctx)
    return services.tasks.reopen_task(user, task_id)


def update_task(arguments: UpdateTaskArguments, ctx: Context[Any, Any]) -> TaskPublic:
    services, user = caller(ctx)
    changes = TaskUpdate.model_validate(arguments.model_dump(exclude_unset=True, exclude={"task_id"}))
    return services.tasks.update_task(user, arguments.task_id, changes)


def delete_task(
    task_id: uuid.UUID,
    ctx: Context[Any, Any],
    scope: Literal["occurrence", "series"] = "occurrence",
) -> DeletedTask:
    services, user = caller(ctx)
    services.tasks.delete_task(user, task_id, scope)
    return DeletedTask(deleted=True, task_id=task_id, scope=scope)


def preview_recurrence(arguments: PreviewArguments, ctx: Context[Any, Any]) -> PreviewResponse:
    services, _ = caller(ctx)
    preview = services.series.preview(arguments.rule, arguments.dtstart, arguments.timezone, arguments.limit)
    return PreviewResponse(occurrences=preview.occurrences, text=preview.text)


def get_series_status(series_id: uuid.UUID, ctx: Context[Any, Any]) -> SeriesPublic:
    services, user = caller(ctx)
    return services.series.get_series(user, series_id)


def skip_occurrence(
    task_id: uuid.UUID,
    ctx: Context[Any, Any],
    due_at: Annotated[
        UtcDatetime | None,
        Field(
            description="A date ahead to skip, as list_occurrences shows it (RFC 3339); omit for the current."
        ),
    ] = None,
) -> SeriesPublic:
    services, user = caller(ctx)
    return services.series.skip_occurrence(user, task_id, due_at)


def list_occurrences(
    series_id: uuid.UUID,
    ctx: Context[Any, Any],
    limit: Annotated[int, Field(ge=1, le=MAX_LISTED, description="How many, the current one included.")] = 10,
) -> OccurrencesPublic:
    services, user = caller(ctx)
    return services.series.list_occurrences(user, series_id, limit)


def move_occurrence(
    series_id: uuid.UUID,
    due_at: Annotated[
        UtcDatetime, Field(description="The occurrence to move, as list_occurrences shows it.")
    ],
    to: Annotated[
        WallOrInstant,
        Field(description="Its new time (RFC 3339); without an offset, wall time in the series' time zone."),
    ],
    ctx: Context[Any, Any],
) -> SeriesPublic:
    services, user = caller(ctx)
    return services.series.move_date(user, series_id, due_at, to)


class SetProfileArguments(ProfileUpdate, _BodyArguments):
    pass


def get_profile(ctx: Context[Any, Any]) -> ProfilePublic:
    services, user = caller(ctx)
    return services.profiles.get_profile(user)


def set_profile(arguments: SetProfileArguments, ctx: Context[Any, Any]) -> ProfilePublic:
    services, user = caller(ctx)
    return services.profiles.put_profile(user, arguments)


def snooze_reminder(
    task_id: uuid.UUID,
    ctx: Context[Any, Any],
    minutes: Annotated[int, Field(ge=1, le=1440, description="Minutes from now, 1-1440.")],
) -> ReminderPublic:
    services, user = caller(ctx)
    return services.reminders.snooze(user, task_id, minutes)


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
        "[{at: RFC 3339}]), a checklist ([{text, done}], at most 50; a series copies it unticked into each "
        "next occurrence) and, for a repeating task, recurrence {rule, timezone, basis}. A recurring task "
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
        reopen_task,
        "Reopen a task",
        'Undo a completion or a skip the user did not mean ("I didn\'t actually do that"): the task is '
        "pending again and its reminders still ahead are armed again. For a recurring task only its latest "
        "completed or skipped occurrence can be reopened, while the occurrence created after it is untouched "
        "(pending, not edited, no reminder sent); that one is withdrawn, so the series does not run ahead. "
        "Otherwise CONFLICT says why. Reopening a pending task changes nothing.",
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
        "CONFLICT naming the current one: nothing else is skipped. With `due_at` (a date ahead, from "
        'list_occurrences) the series leaves that date out instead ("not on Christmas Eve"); '
        "skipping it again changes nothing.",
    ),
    _tool(
        list_occurrences,
        "What is coming in a series",
        "The current occurrence of a recurring series and the next ones (limit in all, at most 100), each "
        "{due_at, status: current | planned | moved, index}, and `skipped`: the rule's dates in that window "
        "the series leaves out. It is what the series will create if each one is done when due. Use it "
        "before skip_occurrence or move_occurrence with a date ahead.",
        read_only=True,
    ),
    _tool(
        move_occurrence,
        "Move one occurrence",
        "Move one occurrence of a recurring series (due_at as list_occurrences shows it) to another time "
        "`to`: the current one gets that due time (its reminders follow); a date ahead is left out and `to` "
        "added, so the rest of the series keeps its rule. Moving the same date again is refused: it is no "
        "longer an occurrence. Returns the series.",
        destructive=True,
    ),
    _tool(
        get_profile,
        "The user's profile",
        "The user's time zone, reminder address and default reminders (null or empty until set). Read it "
        "before creating a series to know the zone it will use.",
        read_only=True,
    ),
    _tool(
        set_profile,
        "Set the user's profile",
        "Set the whole profile (a field left out is cleared): timezone (IANA, e.g. Europe/Paris: a new "
        "recurring task without recurrence.timezone uses it, and reminder emails show times in it), email "
        "(where reminders go, for every pending task too) and default_reminders ([{before: PT15M}]: what a "
        "task created with a due date and without reminders gets). Read get_profile first to keep the "
        "fields the user did not mention.",
        destructive=True,
        idempotent=True,
        body=SetProfileArguments,
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
