"""Activities of `recurring_task_workflow`, bound at registration to the
series' steps (todos.series.steps). Each runs in a logging scope naming its
workflow instance and series, so its lines and the steps' can be found by
either id."""

from __future__ import annotations

from dapr.ext.workflow import WorkflowActivityContext

from todos.core import logs
from todos.series.contract import CreatedOccurrence, FinishedSeries, NextOccurrence, SeriesProgress
from todos.series.steps import SeriesSteps


class SeriesActivities:
    def __init__(self, steps: SeriesSteps) -> None:
        self.steps = steps

    def load_series_progress(self, ctx: WorkflowActivityContext, series_id: str) -> SeriesProgress:
        """Read-only: where the series and its current occurrence stand."""
        with logs.scope(workflow_id=ctx.workflow_id, series_id=series_id):
            return self.steps.load_series_progress(series_id)

    def create_next_occurrence(self, ctx: WorkflowActivityContext, step: NextOccurrence) -> CreatedOccurrence:
        """Insert the next task (once, by its unique key) and make it current."""
        with logs.scope(workflow_id=ctx.workflow_id, series_id=step.series_id):
            return self.steps.create_next_occurrence(step)

    def finish_series(self, ctx: WorkflowActivityContext, finished: FinishedSeries) -> None:
        """Mark a series whose rule is exhausted as finished."""
        with logs.scope(workflow_id=ctx.workflow_id, series_id=finished.series_id):
            self.steps.finish_series(finished)
