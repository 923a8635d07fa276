"""GET /v1/tasks/{id}/history: the audit trail of one task.

Served by the audit role (which writes the trail) and by the api role too, so
a chatbot needs one base URL; both read the same `audit_log` table.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.auth import CurrentUser
from api.deps import Histories
from api.openapi import problems
from todos.events.history import TaskHistory

router = APIRouter(tags=["audit"])


@router.get(
    "/v1/tasks/{task_id}/history",
    response_model=TaskHistory,
    responses=problems(
        401, 404, 422, descriptions={404: "No such task for this user (another user's task looks the same)."}
    ),
)
async def task_history(task_id: uuid.UUID, user: CurrentUser, histories: Histories) -> TaskHistory:
    """What happened to a task, oldest first: `task.created`, `task.updated`
    (with `changes` {field: {old, new}}), `task.completed`, `task.deleted`,
    `reminder.*`. Events reach the trail through Kafka, so the newest change
    may take a moment to appear. Still answers after the task is deleted."""
    return await run_in_threadpool(histories.history, user.id, task_id)
