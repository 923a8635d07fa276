"""/v1/series and /v1/recurrence: recurring series control and rule preview."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Depends

from api.auth import CurrentUser
from api.deps import SeriesOps
from api.openapi import link, problems
from api.ratelimit import limit_previews
from todos.series.models import PreviewRequest, PreviewResponse
from todos.series.views import SeriesPublic

router = APIRouter(tags=["series"])

_NOT_FOUND = problems(
    401, 404, 422, 503, descriptions={404: "No such series for this user (another user's looks the same)."}
)


_SERIES_LINKS = {
    "links": {
        "ControlSeries": link("control_series", series_id="$response.body#/id"),
        "GetWorkflow": link("get_workflow", instance_id="$response.body#/workflow/instance_id"),
    }
}


@router.get(
    "/v1/series/{series_id}", response_model=SeriesPublic, responses={200: _SERIES_LINKS, **_NOT_FOUND}
)
def get_series(series_id: uuid.UUID, user: CurrentUser, series: SeriesOps) -> SeriesPublic:
    """Rule, timezone, basis, status, current task, next due, occurrences
    created, and the workflow's runtime and custom status."""
    return series.get_series(user, series_id)


@router.post(
    "/v1/series/{series_id}/{action}",
    response_model=SeriesPublic,
    responses={
        200: _SERIES_LINKS,
        **_NOT_FOUND,
        **problems(409, descriptions={409: "The series has ended, or nothing to skip."}),
    },
)
def control_series(
    series_id: uuid.UUID,
    action: Literal["pause", "resume", "skip", "stop"],
    user: CurrentUser,
    series: SeriesOps,
) -> SeriesPublic:
    """`pause` (completions create nothing until `resume`), `skip` (the
    current occurrence is marked skipped and the next one created), `stop`."""
    return series.control_series(user, series_id, action)


@router.post(
    "/v1/recurrence/preview",
    response_model=PreviewResponse,
    responses=problems(
        400,
        422,
        429,
        descriptions={
            422: "A field is invalid, or the rule yields too rarely to list `limit` occurrences "
            "(RULE_TOO_SPARSE); `detail` and `errors` name it.",
        },
    ),
    dependencies=[Depends(limit_previews)],
)
def preview_recurrence(body: PreviewRequest, series: SeriesOps) -> PreviewResponse:
    """The first `limit` occurrences of a rule (UTC) and a sentence describing
    it. No authentication needed; each client (the token's `sub` when a valid
    one is sent, else its address) gets a burst of previews, then a steady
    rate (429 with `Retry-After` past it)."""
    preview = series.preview(body.rule, body.dtstart, body.timezone, body.limit)
    return PreviewResponse(occurrences=preview.occurrences, text=preview.text)
