"""Activities of `recurring_task_workflow`. Each runs in a logging scope
naming its workflow instance and series, so its lines
and the service's can be found by either id."""

from __future__ import annotations

from dapr.ext.workflow import WorkflowActivityContext

from todos import logs
from todos.orchestration import CreatedOccurrence, FinishedSeries, NextOccurrence, SeriesProgress
from todos.service import default_service


def load_series_progress(ctx: WorkflowActivityContext, series_id: str) -> SeriesProgress:
    """Read-only: where the series and its current occurrence stand."""
    with logs.scope(workflow_id=ctx.workflow_id, series_id=series_id):
        return default_service().load_series_progress(series_id)


def create_next_occurrence(ctx: WorkflowActivityContext, step: NextOccurrence) -> CreatedOccurrence:
    """Insert the next task (once, by its unique key) and make it current."""
    with logs.scope(workflow_id=ctx.workflow_id, series_id=step.series_id):
        return default_service().create_next_occurrence(step)


def finish_series(ctx: WorkflowActivityContext, finished: FinishedSeries) -> None:
    """Mark a series whose rule is exhausted as finished."""
    with logs.scope(workflow_id=ctx.workflow_id, series_id=finished.series_id):
        default_service().finish_series(finished)
