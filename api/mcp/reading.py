"""What the chatbot's model may read besides calling tools: a task and a
series (with what is coming) as resources, and the `plan_my_day` prompt.
Both go through the services, as the tools do."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from api.mcp.tools import caller
from todos.core.errors import NotFound
from todos.tasks.models import TaskPublic
from todos.tasks.service import TaskQuery

# How many tasks each part of the plan lists, and how far ahead "upcoming" looks.
PLAN_LIMIT = 50
UPCOMING_DAYS = 7


def _id(text: str, noun: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ResourceNotFoundError(
            f"{text[:100]!r} is not a {noun} id; ids come from earlier results."
        ) from None


def read_task(task_id: str, ctx: Context[Any, Any]) -> str:
    services, user = caller(ctx)
    try:
        task = services.tasks.get_task(user, _id(task_id, "task"))
    except NotFound as missing:
        raise ResourceNotFoundError(missing.detail) from None
    return task.model_dump_json()


def read_series(series_id: str, ctx: Context[Any, Any]) -> str:
    """The series as get_series_status shows it, and `coming`: its next ten occurrences."""
    services, user = caller(ctx)
    wanted = _id(series_id, "series")
    try:
        series = services.series.get_series(user, wanted)
        coming = services.series.list_occurrences(user, wanted, 10)
    except NotFound as missing:
        raise ResourceNotFoundError(missing.detail) from None
    return json.dumps({**series.model_dump(mode="json"), "coming": coming.model_dump(mode="json")})


def plan_my_day(ctx: Context[Any, Any], day: str | None = None) -> str:
    """The user's overdue tasks, the day's and the week's after it, for the model to plan with."""
    services, user = caller(ctx)
    zone = ZoneInfo(services.profiles.personal(user).series_timezone)
    now = services.tasks.clock().astimezone(zone)
    try:
        planned = date.fromisoformat(day) if day else now.date()
    except ValueError:
        raise ValueError(f"day: {day!r} is not a date like 2026-12-24") from None
    start = datetime.combine(planned, time(), zone)
    end = start + timedelta(days=1)

    def pending(after: datetime | None, before: datetime) -> list[TaskPublic]:
        query = TaskQuery(status="pending", due_after=after, due_before=before, limit=PLAN_LIMIT)
        return services.tasks.list_tasks(user, query).items

    parts = [
        ("Overdue", pending(None, now)),
        (f"Due on {planned.isoformat()}", pending(max(start, now), end)),
        (f"The {UPCOMING_DAYS} days after", pending(max(end, now), end + timedelta(days=UPCOMING_DAYS))),
    ]
    lines = [
        f"Help me plan {planned.strftime('%A %d %B %Y')} (times in {zone.key}). Suggest an order for the "
        "day's tasks, say which overdue ones to do, reschedule (update_task) or drop, and mention what is "
        "coming that needs preparing. Ask before changing anything.",
    ]
    for heading, tasks in parts:
        lines.append(f"\n{heading}:")
        lines += [_line(task, zone) for task in tasks] or ["- nothing"]
    return "\n".join(lines)


def _line(task: TaskPublic, zone: ZoneInfo) -> str:
    due = task.due_at.astimezone(zone).strftime("%a %d %b %H:%M") if task.due_at else "no due time"
    repeats = " (repeats)" if task.series_id else ""
    return f"- {task.title} [{task.priority}], due {due}{repeats}; task_id {task.id}"


def register(server: MCPServer[Any]) -> None:
    server.resource(
        "todo://tasks/{task_id}",
        name="task",
        title="A task",
        description="One of the user's tasks, as list_tasks shows it (JSON).",
        mime_type="application/json",
    )(read_task)
    server.resource(
        "todo://series/{series_id}",
        name="series",
        title="A recurring series",
        description="A recurring series as get_series_status shows it, with `coming`: its current occurrence "
        "and the next ones, as list_occurrences shows them (JSON).",
        mime_type="application/json",
    )(read_series)
    server.prompt(
        name="plan_my_day",
        title="Plan my day",
        description="The user's overdue tasks, a day's tasks (today by default, in the user's time zone) and "
        "the week after it, with a request to plan the day. `day`: YYYY-MM-DD.",
    )(plan_my_day)
