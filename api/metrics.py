"""HTTP metrics, labelled by route template (never the raw path); recorded
by api.observe."""

from __future__ import annotations

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
