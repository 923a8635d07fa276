"""/v1/workflows: look inside the workflow of a recurring series (its owner only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.auth import CurrentUser
from api.deps import SeriesOps
from api.openapi import problems
from todos.series.views import WorkflowPublic

router = APIRouter(tags=["workflows"])


@router.get(
    "/v1/workflows/{instance_id}",
    response_model=WorkflowPublic,
    responses=problems(
        401,
        404,
        422,
        503,
        descriptions={
            404: "No such workflow for this user: unknown, not a series workflow, or another user's.",
            503: "The Dapr sidecar did not answer.",
        },
    ),
)
def get_workflow(
    instance_id: Annotated[
        str,
        Path(
            max_length=100,
            description="The workflow instance id: `series-{series_id}`.",
            examples=["series-3f1c9a52-8f0e-4b7a-9d27-1c5e0f6b2a10"],
        ),
    ],
    user: CurrentUser,
    series: SeriesOps,
) -> WorkflowPublic:
    """Runtime status, custom status, created/updated times, input, output and
    failure details of a series' workflow, read from the Dapr workflow engine.
    A workflow whose state was purged reports `PURGED`."""
    return series.describe_workflow(user, instance_id)
