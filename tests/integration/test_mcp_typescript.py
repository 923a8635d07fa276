"""The MCP server driven by a second real client, the TypeScript SDK
(@modelcontextprotocol/sdk from npm, run by Node): it lists the tools,
resource templates and prompts, and goes through a skip, a move, a
completion and a reopen, as the Python SDK does in test_mcp.py."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from api.mcp.tools import TOOL_NAMES
from devstack import toolchain
from devstack.stack import Stack
from tests.helpers import token_for
from tests.integration.test_series import new_user

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

JOURNEY = Path(__file__).with_name("ts_client") / "journey.mjs"


def test_a_typescript_chatbot_skips_moves_completes_and_reopens(stack: Stack) -> None:
    sdk = toolchain.ensure(toolchain.MCP_CLIENT)
    user = new_user()

    run = subprocess.run(
        ["node", str(JOURNEY), f"{stack.app_url}/mcp", token_for(user)],
        env={**os.environ, "MCP_CLIENT_DIR": str(sdk)},
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )

    assert run.returncode == 0, run.stderr[-4000:]
    seen = json.loads(run.stdout)
    assert seen["server"]["name"] == "todo-workflows" and "reopen_task" in seen["instructions"]
    assert set(seen["tools"]) == set(TOOL_NAMES)
    assert set(seen["templates"]) == {"todo://tasks/{task_id}", "todo://series/{series_id}"}
    assert seen["prompts"] == ["plan_my_day"]
    first, coming = seen["first"], seen["coming"]
    assert first["user_id"] == user
    assert seen["moved"]["exdates"] == [coming[1], coming[2]] and len(seen["moved"]["rdates"]) == 1
    # Completed, the series created #2; reopened, #1 is current again and #2 withdrawn.
    assert seen["second"]["occurrence_index"] == 2
    assert seen["reopened"]["status"] == "pending" and seen["after"] == [first["id"]]
    assert seen["series"]["current_task"]["id"] == first["id"]
    assert seen["series"]["coming"]["skipped"] == [coming[1], coming[2]]
