"""The chatbot's side of MCP for tests: the official `mcp` SDK client over
streamable HTTP, and tool calls that must succeed or fail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

from api.mcp.endpoint import ERROR_META_KEY

T = TypeVar("T")


@asynccontextmanager
async def mcp_session(app_url: str, headers: dict[str, str], mode: str = "auto") -> AsyncIterator[Client]:
    """An MCP client session with the app at `app_url` (its /mcp endpoint)."""
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(f"{app_url}/mcp", http_client=http), mode=mode) as client,
    ):
        yield client


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool call that must succeed; its structured result."""
    result = await client.call_tool(tool, arguments)
    assert isinstance(result, CallToolResult)
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def tool_error(client: Client, tool: str, **arguments: Any) -> tuple[str, str, str | None]:
    """A tool call that must fail: (code, sentence, field)."""
    result = await client.call_tool(tool, arguments)
    assert isinstance(result, CallToolResult)
    assert result.is_error, result.structured_content
    text = result.content[0].text
    error = (result.meta or {})[ERROR_META_KEY]
    assert text.startswith(f"{error['code']}: "), text
    return error["code"], text, error["field"]


async def eventually(check: Callable[[], Awaitable[T | None]], what: str, timeout: float = 60) -> T:
    """Await `check()` until it is truthy; its value, or fail saying what."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.3)
