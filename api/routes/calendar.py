"""/v1/calendar/feed (a person's secret feed address) and /calendar/{token}.ics
(the feed itself, which calendar apps fetch without a bearer token)."""

from __future__ import annotations

from email.utils import format_datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status

from api.auth import CurrentUser
from api.deps import Calendars
from api.openapi import problems
from todos.calendar.models import FeedPublic
from todos.core.fields import rfc3339

router = APIRouter(tags=["calendar"])
CALENDAR_TYPE = "text/calendar; charset=utf-8"


@router.post(
    "/v1/calendar/feed",
    status_code=status.HTTP_201_CREATED,
    response_model=FeedPublic,
    responses=problems(401, 503),
)
def create_feed(request: Request, user: CurrentUser, calendars: Calendars) -> FeedPublic:
    """Create the caller's calendar feed, or replace its address (the old one then answers 404)."""
    token, created = calendars.rotate(user)
    url = str(request.url_for("calendar_feed", token=token))
    return FeedPublic(url=url, events_url=f"{url}?as=events", created_at=rfc3339(created) or "")


@router.delete("/v1/calendar/feed", status_code=status.HTTP_204_NO_CONTENT, responses=problems(401, 503))
def revoke_feed(user: CurrentUser, calendars: Calendars) -> Response:
    """Revoke the caller's feed: its address answers 404 from now on (idempotent)."""
    calendars.revoke(user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/calendar/{token}.ics",
    name="calendar_feed",
    response_class=Response,
    responses={
        200: {"content": {"text/calendar": {"schema": {"type": "string"}}}, "description": "RFC 5545 text."},
        304: {"description": "Unchanged since the ETag sent in If-None-Match."},
        **problems(404, 422, 503),
    },
)
def calendar_feed(
    token: Annotated[
        str, Path(description="The secret part of the feed's address.", examples=["3q2-fZx9vT8kLw0s"])
    ],
    request: Request,
    calendars: Calendars,
    as_: Annotated[
        Literal["todos", "events"],
        Query(alias="as", description="`events` for calendar apps that ignore to-dos.", examples=["events"]),
    ] = "todos",
) -> Response:
    """The feed: each pending task with a due time as a VTODO (with a VALARM per reminder) and
    each live series as one, with its RRULE, EXDATEs and RDATEs; `as=events` gives VEVENTs.
    No bearer token: the address is the secret."""
    served = calendars.serve(token, as_events=as_ == "events")
    headers = {
        "ETag": served.etag,
        "Last-Modified": format_datetime(served.last_modified, usegmt=True),
        "Cache-Control": "private, max-age=300",
    }
    if request.headers.get("if-none-match") == served.etag:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(served.body, media_type=CALENDAR_TYPE, headers=headers)
