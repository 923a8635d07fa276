"""/v1/tasks: thin translations from HTTP to the service layer."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from api.auth import CurrentUser
from api.deps import Tasks
from api.openapi import link, problems
from todos.tasks.models import TaskCreate, TaskFilter, TaskPage, TaskPublic, TaskUpdate
from todos.tasks.service import TaskQuery

router = APIRouter(prefix="/v1/tasks", tags=["tasks"], responses=problems(401, 422, 503))

_NOT_FOUND = problems(
    404, descriptions={404: "No such task for this user (another user's task looks the same)."}
)
_CONFLICT = problems(409)


_SERIES_LINK = {"links": {"GetSeries": link("get_series", series_id="$response.body#/series_id")}}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TaskPublic,
    responses={201: _SERIES_LINK, **problems(400)},
)
def create_task(body: TaskCreate, user: CurrentUser, tasks: Tasks) -> TaskPublic:
    """Create a task; with `recurrence` it starts a recurring series (its
    workflow is `series-{series_id}`) whose first occurrence is this task."""
    return tasks.create_task(user, body)


@router.get("", response_model=TaskPage)
def list_tasks(user: CurrentUser, tasks: Tasks, filters: Annotated[TaskFilter, Query()]) -> TaskPage:
    """The user's tasks, oldest first, a page at a time (`next_cursor`)."""
    return tasks.list_tasks(user, TaskQuery(**filters.model_dump()))


@router.get("/{task_id}", response_model=TaskPublic, responses=_NOT_FOUND)
def get_task(task_id: uuid.UUID, user: CurrentUser, tasks: Tasks) -> TaskPublic:
    return tasks.get_task(user, task_id)


@router.patch(
    "/{task_id}",
    response_model=TaskPublic,
    responses={200: _SERIES_LINK, **_NOT_FOUND, **_CONFLICT, **problems(400)},
)
def update_task(task_id: uuid.UUID, body: TaskUpdate, user: CurrentUser, tasks: Tasks) -> TaskPublic:
    """Change fields. A new `recurrence` rule applies from the series' current
    occurrence, so only that one takes it (409 on an older occurrence or an
    ended series, naming the current one)."""
    return tasks.update_task(user, task_id, body)


@router.delete("/{task_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_NOT_FOUND)
def delete_task(
    task_id: uuid.UUID,
    user: CurrentUser,
    tasks: Tasks,
    scope: Literal["occurrence", "series"] = "occurrence",
) -> Response:
    """Delete a task. For a recurring task, `scope=occurrence` removes this
    occurrence (the series moves on) and `scope=series` stops the series."""
    tasks.delete_task(user, task_id, scope)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{task_id}/complete", response_model=TaskPublic, responses={**_NOT_FOUND, **_CONFLICT})
def complete_task(task_id: uuid.UUID, user: CurrentUser, tasks: Tasks) -> TaskPublic:
    """Mark done (idempotent). For a recurring task the series then creates
    the next occurrence."""
    return tasks.complete_task(user, task_id)


@router.post("/{task_id}/reopen", response_model=TaskPublic, responses={**_NOT_FOUND, **_CONFLICT})
def reopen_task(task_id: uuid.UUID, user: CurrentUser, tasks: Tasks) -> TaskPublic:
    """Undo a completion or a skip: the task is pending again, with its
    reminders still ahead. For a recurring task only the latest completed or
    skipped occurrence, while the occurrence created after it is untouched
    (pending, not edited, no reminder sent): that one is withdrawn. Else 409
    saying why. Reopening a pending task changes nothing."""
    return tasks.reopen_task(user, task_id)
