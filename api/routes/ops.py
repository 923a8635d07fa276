"""Health, readiness and metrics for operators and Kubernetes probes."""

from __future__ import annotations

import os
from typing import Any

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.openapi import problems
from todos.core.db import Database

router = APIRouter(tags=["ops"])


def _example(body: dict[str, str]) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {"application/json": {"example": body}}}}


@router.get("/healthz", responses=_example({"status": "ok"}))
def healthz() -> dict[str, str]:
    """The process is up (liveness)."""
    return {"status": "ok"}


def _database_ok(database: Database) -> str | None:
    try:
        database.ping()
        return None
    except Exception as error:  # noqa: BLE001 - any failure means "not ready"
        return f"database: {type(error).__name__}"


def _sidecar_ok() -> str | None:
    port = os.environ.get("DAPR_HTTP_PORT", "3500")
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/v1.0/healthz/outbound", timeout=2)
    except httpx.HTTPError as error:
        return f"dapr sidecar: {type(error).__name__}"
    return None if response.is_success else f"dapr sidecar: HTTP {response.status_code}"


@router.get(
    "/readyz",
    responses={
        **_example({"status": "ready"}),
        **problems(503, descriptions={503: "A dependency is down; `detail` and `checks` say which."}),
    },
)
def readyz(request: Request) -> JSONResponse:
    """Ready for traffic: PostgreSQL answers and the Dapr sidecar is up."""
    failing = [p for p in (_database_ok(request.app.state.database), _sidecar_ok()) if p]
    if failing:
        return JSONResponse(
            {
                "type": "about:blank",
                "title": "Service unavailable",
                "status": 503,
                "detail": "Not ready: " + "; ".join(failing) + ".",
                "checks": failing,
            },
            status_code=503,
            media_type="application/problem+json",
        )
    return JSONResponse({"status": "ready"})


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
