"""Activities for reminders."""

from __future__ import annotations

import uuid

from dapr.ext.workflow import WorkflowActivityContext

from todos import logs
from todos.orchestration import ArmedReminders, TaskReminders
from todos.service import default_service


def schedule_task_reminders(ctx: WorkflowActivityContext, ref: TaskReminders) -> ArmedReminders:
    """Arm the Dapr jobs of a new occurrence's reminders (overwrite: a retry
    arms nothing twice)."""
    with logs.scope(workflow_id=ctx.workflow_id, task_id=ref.task_id):
        armed = default_service().schedule_task_reminders(uuid.UUID(ref.task_id))
        return ArmedReminders(task_id=ref.task_id, armed=armed)
