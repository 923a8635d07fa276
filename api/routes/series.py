"""/v1/series and /v1/recurrence: recurring series control and rule preview."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query

from api.auth import CurrentUser
from api.deps import SeriesOps
from api.openapi import link, problems
from api.ratelimit import limit_previews
from todos.core.users import User
from todos.series.coming import MAX_LISTED, OccurrencesPublic
from todos.series.models import MoveRequest, PreviewRequest, PreviewResponse, SkipRequest
from todos.series.service import Control, SeriesService
from todos.series.views import SeriesPublic

router = APIRouter(tags=["series"])

_NOT_FOUND = problems(
    401, 404, 422, 503, descriptions={404: "No such series for this user (another user's looks the same)."}
)


_SERIES_LINKS = {
    "links": {
        "PauseSeries": link("pause_series", series_id="$response.body#/id"),
        "ListOccurrences": link("list_occurrences", series_id="$response.body#/id"),
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


@router.get(
    "/v1/series/{series_id}/occurrences",
    response_model=OccurrencesPublic,
    responses=_NOT_FOUND,
)
def list_occurrences(
    series_id: uuid.UUID,
    user: CurrentUser,
    series: SeriesOps,
    limit: Annotated[int, Query(ge=1, le=MAX_LISTED, description="How many, the current one included.")] = 10,
) -> OccurrencesPublic:
    """What is coming: the current occurrence and the next ones, as the
    series' workflow will create them if each is done when due, and the
    dates of the rule in that window it leaves out. Empty once the series ended."""
    return series.list_occurrences(user, series_id, limit)


_SKIP_CURRENT = SkipRequest()


@router.post(
    "/v1/series/{series_id}/skip",
    response_model=SeriesPublic,
    responses={
        200: _SERIES_LINKS,
        **_NOT_FOUND,
        **problems(400, 409, descriptions={409: "The series has ended, or nothing to skip."}),
    },
)
def skip_occurrence(
    series_id: uuid.UUID,
    user: CurrentUser,
    series: SeriesOps,
    # Optional: a skip of the current occurrence needs no body.
    body: Annotated[SkipRequest, Body()] = _SKIP_CURRENT,
) -> SeriesPublic:
    """Skip the current occurrence (it is marked skipped and the next one
    created), or, with `due_at`, one ahead: the series leaves it out."""
    if body.due_at is None:
        return series.control_series(user, series_id, "skip")
    return series.skip_date(user, series_id, body.due_at)


@router.post(
    "/v1/series/{series_id}/move",
    response_model=SeriesPublic,
    responses={
        200: _SERIES_LINKS,
        **_NOT_FOUND,
        **problems(400, 409, descriptions={409: "The series has ended, or keeps the most dates it can."}),
    },
)
def move_occurrence(
    series_id: uuid.UUID, body: MoveRequest, user: CurrentUser, series: SeriesOps
) -> SeriesPublic:
    """Move one occurrence to another time: the current one (its due time
    changes, its reminders follow) or one ahead (an EXDATE and an RDATE)."""
    return series.move_date(user, series_id, body.due_at, body.to)


_CONTROLS: dict[Control, str] = {
    "pause": "Pause the series: completions create nothing until `resume`.",
    "resume": "Resume a paused series: a completed current occurrence is followed at once.",
    "stop": "Stop the series: its pending occurrence goes; completed ones stay as history.",
}


def _control_route(action: Control) -> Callable[[uuid.UUID, User, SeriesService], SeriesPublic]:
    def control(series_id: uuid.UUID, user: CurrentUser, series: SeriesOps) -> SeriesPublic:
        return series.control_series(user, series_id, action)

    control.__doc__ = _CONTROLS[action]
    return control


# One path per action (not /{action}): a path that only names the series'
# resources answers 405 to a method it does not have.
for _action in _CONTROLS:
    router.add_api_route(
        f"/v1/series/{{series_id}}/{_action}",
        _control_route(_action),
        methods=["POST"],
        name=f"{_action}_series",
        response_model=SeriesPublic,
        responses={
            200: _SERIES_LINKS,
            **_NOT_FOUND,
            **problems(409, descriptions={409: "The series has ended."}),
        },
    )


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
