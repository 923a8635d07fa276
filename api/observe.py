"""Every HTTP request, observed once: its logging scope (trace id from the
caller's `traceparent`, the user and task the handlers add), its metrics,
and one access line at the end.

A plain ASGI middleware rather than `@app.middleware("http")`: that one runs
the app in a task of its own, and it is cheaper without.
"""

from __future__ import annotations

import logging
import time

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import LATENCY, REQUESTS
from todos.core import logs

access_log = logging.getLogger("api.access")

# Where the request's logging scope is left for code that runs outside the
# request's own context (the 500 handler, the MCP session manager's tasks).
LOG_FIELDS_KEY = "todo.log_fields"
# Probes and scrapes arrive every few seconds: their lines only at DEBUG.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


def route_template(scope: Scope) -> str:
    """The matched route's template (set by the router); unknown paths share
    one label so scanners cannot grow the series without bound."""
    return str(getattr(scope.get("route"), "path", "unmatched"))


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # unless a response starts: an error escaped every handler

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        traceparent = Headers(scope=scope).get("traceparent")
        with logs.scope(trace_id=logs.trace_id(traceparent)) as fields:
            scope[LOG_FIELDS_KEY] = fields
            try:
                await self.app(scope, receive, send_and_note)
            finally:
                elapsed = time.perf_counter() - started
                method, route = scope["method"], route_template(scope)
                LATENCY.labels(method, route).observe(elapsed)
                REQUESTS.labels(method, route, str(status)).inc()
                access_log.log(
                    logging.DEBUG if route in QUIET_ROUTES else logging.INFO,
                    "%s %s %d %.3fs",
                    method,
                    scope["path"],
                    status,
                    elapsed,
                    extra={"method": method, "route": route, "status": status, "duration_seconds": elapsed},
                )
