"""`POST /job/{name}`: daprd calls this when a Dapr job fires (the body is
the job's data). Only daprd may call it: it presents the sidecar's
APP_API_TOKEN in the `dapr-api-token` header, which must match
TODO_APP_API_TOKEN (required outside dev)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request

from api.auth import Unauthorized
from todos.delivery import ReminderDelivery

router = APIRouter(tags=["dapr"])


def daprd_only(
    request: Request,
    dapr_api_token: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    expected = request.app.state.settings.app_api_token
    if expected is None:
        return
    if dapr_api_token is None or not hmac.compare_digest(
        dapr_api_token.encode(), expected.get_secret_value().encode()
    ):
        raise Unauthorized("Only the Dapr sidecar may call job callbacks (header `dapr-api-token`).")


@router.post(
    "/job/{name}",
    dependencies=[Depends(daprd_only)],
    responses={
        401: {"description": "Missing or wrong `dapr-api-token`."},
        404: {"description": "Not a job this app handles (Dapr does not retry it)."},
    },
)
async def job_fired(name: str, request: Request) -> dict[str, Any]:
    """A reminder's job fired: send its email unless there is nothing to do
    (task completed or deleted, reminder already sent or rescheduled). Any
    2xx tells Dapr the firing is handled; an error makes it retry."""
    delivery: ReminderDelivery = request.app.state.delivery
    return {"job": name, "outcome": await delivery.fire(name, await request.body())}
