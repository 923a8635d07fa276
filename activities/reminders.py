"""The reminder activity of `recurring_task_workflow`, bound at registration
to the series' steps."""

from __future__ import annotations

import uuid

from dapr.ext.workflow import WorkflowActivityContext

from todos.core import logs
from todos.series.contract import ArmedReminders, TaskReminders
from todos.series.steps import SeriesSteps


class ReminderActivities:
    def __init__(self, steps: SeriesSteps) -> None:
        self.steps = steps

    def schedule_task_reminders(self, ctx: WorkflowActivityContext, ref: TaskReminders) -> ArmedReminders:
        """Arm the Dapr jobs of a new occurrence's reminders (overwrite: a retry
        arms nothing twice)."""
        with logs.scope(workflow_id=ctx.workflow_id, task_id=ref.task_id):
            armed = self.steps.schedule_task_reminders(uuid.UUID(ref.task_id))
            return ArmedReminders(task_id=ref.task_id, armed=armed)
