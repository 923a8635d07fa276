"""A cap on request bodies (TODO_MAX_REQUEST_BODY_BYTES). FastAPI reads and
parses a body before any dependency, authentication included, runs: without
a cap anyone could make a replica hold whatever they send.

The body is read here, up to the cap, before the app sees the request; over
it (declared in Content-Length, or counted as a chunked body streams in) the
answer is a 413 problem document. Every route reads its whole body anyway,
so holding it first costs nothing; responses, the /mcp streams included,
pass through untouched.

Not FastAPI's own `max_body_size`: where no route catches its exception it
answers in plain text, and the MCP SDK, which reads /mcp bodies itself, turns
that exception into a 500.

Only the api role has it: the audit role is called by daprd alone, and a bulk
delivery of 1,000 events can be larger than any cap sized for a client.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_bytes:
            # Answered before reading: a client that waits for 100-continue sends nothing.
            await self._refuse(scope, receive, send)
            return
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client left mid-body: the app sees that, as it would without this
            part = message.get("body", b"")
            size += len(part)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            parts.append(part)
            if not message.get("more_body", False):
                message = {"type": "http.request", "body": b"".join(parts), "more_body": False}
                break
        first: Message | None = message

        async def replay() -> Message:
            nonlocal first
            if first is None:
                return await receive()  # after the body: http.disconnect, when it comes
            handed, first = first, None
            return handed

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"The request body is larger than {self.max_bytes} bytes, the most this API accepts."
        response = problem(413, detail, code="BODY_TOO_LARGE", errors=[{"field": "body", "message": detail}])
        await response(scope, receive, send)
