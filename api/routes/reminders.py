"""/v1/reminders: what a user does with a reminder that went out."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from api.auth import CurrentUser
from api.deps import Reminders
from api.openapi import problems
from todos.reminders.models import ReminderPublic, SnoozeRequest

router = APIRouter(prefix="/v1/reminders", tags=["reminders"])


@router.post(
    "/{task_id}/snooze",
    response_model=ReminderPublic,
    responses=problems(
        400,
        401,
        404,
        409,
        422,
        503,
        descriptions={409: "The task is not pending, or none of its reminders has been sent yet."},
    ),
)
def snooze_reminder(
    task_id: uuid.UUID, body: SnoozeRequest, user: CurrentUser, reminders: Reminders
) -> ReminderPublic:
    """Send the task's most recently sent reminder again in `minutes` (1-1440)."""
    return reminders.snooze(user, task_id, body.minutes)
