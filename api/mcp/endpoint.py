"""The MCP endpoint: tools (api.mcp.tools) over streamable HTTP at /mcp.

Every tool is a thin translation to the same services the REST routes call
(`request.app.state.services`), so the rules live in one place. The user is
the `sub` of the HTTP request's bearer token, checked by `McpEndpoint`
before the SDK sees the request; no tool takes a user argument.

Design choices:
- Stateless streamable HTTP with JSON responses: each POST carries a
  complete exchange, so any replica behind a Kubernetes Service can answer
  any request (no sticky sessions), and the tools need nothing from the
  client mid-call.
- Tool arguments are the REST bodies: add_task's arguments are exactly a
  `POST /v1/tasks` body, validated by the same model (`TaskCreate`).
- A tool error is a result with `isError` whose text reads
  `CODE: sentence` (the codes of the REST problem documents) and whose
  `_meta["todo-workflows/error"]` holds `{code, field}` for programs.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import CallToolResult, InputRequiredResult, TextContent
from starlette.datastructures import Headers
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from api.auth import Unauthorized, user_from_authorization
from api.mcp import reading
from api.mcp.guide import INSTRUCTIONS
from api.mcp.tools import TOOL_NAMES, TOOLS, USER_KEY
from api.metrics import MCP_TOOL_CALLS
from api.problems import classify, problem
from todos.core import logs
from todos.core.settings import Settings

PATH = "/mcp"
ERROR_META_KEY = "todo-workflows/error"


def error_result(code: str, message: str, field: str | None = None) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=f"{code}: {message}")],
        is_error=True,
        _meta={ERROR_META_KEY: {"code": code, "field": field}},
    )


def _coded(error: ToolError) -> tuple[str, str, str | None] | None:
    """(code, sentence, field) of a failure the caller can act on (the REST
    map's, api.problems.classify); None for a crash."""
    failure = classify(error.__cause__) if error.__cause__ is not None else None
    return None if failure is None else (failure.code, failure.detail, failure.field)


class TodoMCPServer(MCPServer[Any]):
    """MCPServer whose tool failures carry the service's error codes."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        if name not in TOOL_NAMES:
            MCP_TOOL_CALLS.labels("unknown", "UNKNOWN_TOOL").inc()
            return error_result(
                "UNKNOWN_TOOL", f"There is no tool {name[:100]!r}; the tools are {', '.join(TOOL_NAMES)}."
            )
        try:
            result = await super().call_tool(name, arguments, context)
        except ToolError as error:
            coded = _coded(error)
            MCP_TOOL_CALLS.labels(name, coded[0] if coded else "INTERNAL").inc()
            if coded is None:
                raise
            return error_result(*coded)
        MCP_TOOL_CALLS.labels(name, "ok").inc()
        return result


def build_server() -> TodoMCPServer:
    server = TodoMCPServer(
        "todo-workflows",
        title="Todo workflows",
        instructions=INSTRUCTIONS,
        version="1.0.0",
        tools=list(TOOLS),
    )
    reading.register(server)
    return server


class McpEndpoint:
    """The ASGI app at /mcp: authenticate, then hand over to the SDK's
    session manager, which checks Host/Origin against the settings."""

    def __init__(self, settings: Settings, server: TodoMCPServer | None = None) -> None:
        self.settings = settings
        self.server = server or build_server()
        # Builds the session manager; the Starlette app it returns is not
        # used because the endpoint is a route of the FastAPI app instead.
        self.server.streamable_http_app(
            streamable_http_path=PATH,
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=list(settings.mcp_allowed_hosts),
                allowed_origins=list(settings.mcp_allowed_origins),
            ),
        )
        self.session_manager = self.server.session_manager

    def route(self) -> Route:
        return Route(PATH, endpoint=self, include_in_schema=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        header = Headers(scope=scope).get("authorization")
        try:
            # A JWKS lookup may block on the network: keep it off the event loop.
            user = await anyio.to_thread.run_sync(user_from_authorization, header, self.settings)
        except Unauthorized as error:
            await problem(401, error.detail, code=error.code)(scope, receive, send)
            return
        scope[USER_KEY] = user
        logs.annotate(user_id=user.id)
        await self.session_manager.handle_request(scope, receive, send)
