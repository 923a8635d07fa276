"""`POST /job/{name}`: daprd calls this when a Dapr job fires (the body is
the job's data). Only daprd may call it: it presents the sidecar's
APP_API_TOKEN in the `dapr-api-token` header, which must match
TODO_APP_API_TOKEN (required outside dev)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.auth import DaprCaller
from api.deps import services_of

# Called by daprd only, so not part of the public API description.
router = APIRouter(tags=["dapr"], include_in_schema=False, dependencies=[DaprCaller])


@router.post("/job/{name}")
async def job_fired(name: str, request: Request) -> dict[str, Any]:
    """A reminder's job fired: send its email unless there is nothing to do
    (task completed or deleted, reminder already sent or rescheduled). Any
    2xx tells Dapr the firing is handled; an error makes it retry."""
    delivery = services_of(request).delivery
    return {"job": name, "outcome": await delivery.fire(name, await request.body())}
