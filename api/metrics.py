"""HTTP metrics, labelled by route template (never the raw path)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from prometheus_client import Counter, Histogram

REQUESTS = Counter("todo_http_requests_total", "HTTP requests handled.", ["method", "route", "status"])
LATENCY = Histogram(
    "todo_http_request_seconds",
    "HTTP request latency.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
MCP_TOOL_CALLS = Counter(
    "todo_mcp_tool_calls_total",
    "MCP tool calls by tool and outcome: ok, or the error code the caller got.",
    ["tool", "outcome"],
)


def _route_template(request: Request) -> str:
    """The matched route's template (set by the router); unknown paths share
    one label so scanners cannot grow the series without bound."""
    route = request.scope.get("route")
    return str(getattr(route, "path", "unmatched"))


async def record(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    started = time.perf_counter()
    response = await call_next(request)
    route = _route_template(request)
    LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
    REQUESTS.labels(request.method, route, str(response.status_code)).inc()
    return response
