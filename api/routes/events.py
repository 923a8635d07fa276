"""Dapr subscription endpoints of the audit role (declared in
components/<profile>/subscriptions.yaml). Only daprd calls them."""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.auth import DaprCaller
from todos.events import audit

router = APIRouter(tags=["dapr"], include_in_schema=False, dependencies=[DaprCaller])

# The topics of todos.events.schema; any other path is a 404, which Dapr drops.
Topic = Literal["task-events", "reminders", "task-updates"]
DeadLetterTopic = Literal["task-events-dlq", "reminders-dlq", "task-updates-dlq"]


def _deliveries(topic: str, body: Any) -> tuple[bool, list[audit.Delivery]]:
    """(is bulk, messages): a bulk request lists entries; otherwise the body
    is one CloudEvent."""
    if isinstance(body, dict) and isinstance(body.get("entries"), list):
        return True, [
            audit.Delivery(entry_id=str(entry.get("entryId")), topic=topic, cloud_event=entry.get("event"))
            for entry in body["entries"]
            if isinstance(entry, dict)
        ]
    entry_id = body.get("id") if isinstance(body, dict) else None
    return False, [audit.Delivery(entry_id=str(entry_id or "message"), topic=topic, cloud_event=body)]


async def _body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


@router.post("/events/{topic}")
async def receive(topic: Topic, request: Request) -> dict[str, Any]:
    """Record events in the audit log: per message SUCCESS or RETRY
    (database trouble); malformed or unknown-version messages are moved to
    the dead-letter topic first (see todos.events.audit)."""
    bulk, deliveries = _deliveries(topic, await _body(request))
    log: audit.AuditLog = request.app.state.audit
    statuses = await run_in_threadpool(log.record, deliveries)
    if bulk:
        return {"statuses": [{"entryId": d.entry_id, "status": statuses[d.entry_id]} for d in deliveries]}
    return {"status": statuses[deliveries[0].entry_id]}


@router.post("/dead-letters/{topic}")
async def dead_letters(topic: DeadLetterTopic, request: Request) -> dict[str, Any]:
    """Count and log what reached a dead-letter topic (the messages stay on it)."""
    bulk, deliveries = _deliveries(topic, await _body(request))
    for delivery in deliveries:
        audit.dead_letter(topic, delivery.cloud_event)
    if bulk:
        return {"statuses": [{"entryId": d.entry_id, "status": "SUCCESS"} for d in deliveries]}
    return {"status": "SUCCESS"}
