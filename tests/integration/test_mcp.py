"""The chatbot's MCP server, driven by the official `mcp` SDK client over
streamable HTTP against the running app (with its daprd, PostgreSQL and the
workflow engine): the same path a chatbot takes."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from api.mcp.tools import TOOL_NAMES
from devstack.stack import Stack
from tests.helpers import auth, token_for
from tests.integration.mcp_support import call, eventually, mcp_session, tool_error
from tests.integration.support import running_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

NEW_YORK = ZoneInfo("America/New_York")
# The list itself is pinned by tests/unit/api/test_mcp_tools.py.
TOOLS = set(TOOL_NAMES)
CLUSTER_HOST = "todo-api.todo.svc.cluster.local"


def new_user() -> str:
    return f"mcp-{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def mcp_client(
    stack: Stack, user: str | None, *, headers: dict[str, str] | None = None, mode: str = "auto"
) -> AsyncIterator[Client]:
    sent = {**(auth(user) if user else {}), **(headers or {})}
    async with mcp_session(stack.app_url, sent, mode) as client:
        yield client


def tomorrow_at_nine() -> datetime:
    now = datetime.now(NEW_YORK)
    return now.replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=1)


async def add_daily(client: Client, title: str = "Water the plants") -> dict[str, Any]:
    return await call(
        client,
        "add_task",
        title=title,
        tags=["home"],
        due_at=tomorrow_at_nine().isoformat(),
        recurrence={"rule": "daily", "timezone": "America/New_York"},
    )


# ---- tools --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_lists_the_tools_with_schemas_and_rule_guidance(stack: Stack, mode: str) -> None:
    async with mcp_client(stack, new_user(), mode=mode) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}

    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and tool.output_schema, tool.name
        assert not {"user", "user_id", "sub"} & set(tool.input_schema.get("properties", {})), tool.name
    # add_task's arguments are a POST /v1/tasks body, at the top level.
    add = tools["add_task"].input_schema
    assert {"title", "due_at", "reminders", "recurrence"} <= set(add["properties"])
    assert add["required"] == ["title"]
    for name in ("add_task", "update_task", "preview_recurrence"):
        assert "every other Tuesday" in (tools[name].description or "")
        assert "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU" in (tools[name].description or "")
    assert tools["update_task"].input_schema["required"] == ["task_id"]
    assert tools["list_tasks"].annotations and tools["list_tasks"].annotations.read_only_hint
    assert tools["delete_task"].annotations and tools["delete_task"].annotations.destructive_hint


async def test_a_recurring_task_added_and_completed_by_tool_moves_to_the_next_occurrence(
    stack: Stack, client: httpx.Client
) -> None:
    user = new_user()
    async with mcp_client(stack, user) as mcp:
        first = await add_daily(mcp)
        assert first["occurrence_index"] == 1 and first["series_id"]
        assert first["recurrence"] == {
            "rule": "FREQ=DAILY",
            "timezone": "America/New_York",
            "basis": "schedule",
            "exdates": [],
            "rdates": [],
        }

        done = await call(mcp, "complete_task", task_id=first["id"])
        assert done["status"] == "completed" and done["completed_at"]

        async def next_occurrence() -> dict[str, Any] | None:
            page = await call(mcp, "list_tasks", series_id=first["series_id"], status="pending")
            return next((t for t in page["items"] if t["occurrence_index"] == 2), None)

        second = await eventually(next_occurrence, "occurrence #2 in list_tasks")

    due = datetime.fromisoformat(second["due_at"]).astimezone(NEW_YORK)
    assert due == tomorrow_at_nine() + timedelta(days=1)
    assert (second["title"], second["tags"], second["status"]) == ("Water the plants", ["home"], "pending")
    # The tools and REST share one service: REST sees the same tasks.
    listed = client.get("/v1/tasks", params={"series_id": first["series_id"]}, headers=auth(user)).json()
    assert {t["id"] for t in listed["items"]} == {first["id"], second["id"]}


async def test_preview_recurrence_reads_a_rule_back_as_dates(stack: Stack) -> None:
    async with mcp_client(stack, new_user()) as client:
        every_other_tuesday = await call(
            client,
            "preview_recurrence",
            rule="FREQ=WEEKLY;INTERVAL=2;BYDAY=TU",
            dtstart="2026-12-01T09:00:00",
            timezone="America/New_York",
            limit=3,
        )
        month_ends = await call(
            client,
            "preview_recurrence",
            rule="last day of the month",
            dtstart="2027-01-31T18:00:00Z",
            limit=3,
        )

    assert every_other_tuesday["occurrences"] == [
        "2026-12-01T14:00:00Z",
        "2026-12-15T14:00:00Z",
        "2026-12-29T14:00:00Z",
    ]
    assert "every 2 weeks" in every_other_tuesday["text"]
    assert month_ends["occurrences"] == [
        "2027-01-31T18:00:00Z",
        "2027-02-28T18:00:00Z",
        "2027-03-31T18:00:00Z",
    ]


async def test_get_series_status_shows_the_series_and_its_running_workflow(stack: Stack) -> None:
    async with mcp_client(stack, new_user()) as client:
        task = await add_daily(client)

        async def running() -> dict[str, Any] | None:
            series = await call(client, "get_series_status", series_id=task["series_id"])
            workflow = series["workflow"]
            ready = workflow["runtime_status"] == "RUNNING" and workflow["custom_status"]
            return series if ready else None

        series = await eventually(running, "the series workflow to run")

    assert series["status"] == "active" and series["occurrences_created"] == 1
    assert series["current_task"]["id"] == task["id"]
    assert series["text"] == "daily at 09:00 (America/New_York)"
    assert series["workflow"]["instance_id"] == f"series-{task['series_id']}"
    assert series["workflow"]["custom_status"]["current_task_id"] == task["id"]


async def test_skip_occurrence_moves_the_series_on(stack: Stack) -> None:
    async with mcp_client(stack, new_user()) as client:
        task = await add_daily(client)
        series = await call(client, "skip_occurrence", task_id=task["id"])
        assert series["id"] == task["series_id"]

        async def second() -> dict[str, Any] | None:
            page = await call(client, "list_tasks", series_id=task["series_id"], status="all")
            by_index = {t["occurrence_index"]: t for t in page["items"]}
            return by_index if 2 in by_index else None

        occurrences = await eventually(second, "the occurrence after the skipped one")
    assert occurrences[1]["status"] == "skipped" and occurrences[2]["status"] == "pending"


async def test_a_completion_reopened_by_tool_withdraws_the_next_occurrence(stack: Stack) -> None:
    async with mcp_client(stack, new_user()) as client:
        task = await add_daily(client)
        await call(client, "complete_task", task_id=task["id"])

        async def pending() -> list[dict[str, Any]] | None:
            page = await call(client, "list_tasks", series_id=task["series_id"], status="pending")
            return page["items"] or None

        second = (await eventually(pending, "the occurrence after the completed one"))[0]
        reopened = await call(client, "reopen_task", task_id=task["id"])
        page = await call(client, "list_tasks", series_id=task["series_id"], status="all")
        # The withdrawn occurrence is gone.
        code, text, field = await tool_error(client, "reopen_task", task_id=second["id"])
    assert reopened["status"] == "pending" and reopened["completed_at"] is None
    assert [t["id"] for t in page["items"]] == [task["id"]]
    assert (code, field) == ("NOT_FOUND", "task_id") and str(second["id"]) in text


async def test_a_chatbot_sets_the_profile_a_new_series_then_uses(stack: Stack) -> None:
    async with mcp_client(stack, new_user()) as client:
        before = await call(client, "get_profile")
        await call(client, "set_profile", timezone="Asia/Tokyo", default_reminders=[{"before": "PT10M"}])
        after = await call(client, "get_profile")
        task = await call(
            client, "add_task", title="Tea", due_at="2030-01-07T08:00:00+09:00", recurrence={"rule": "daily"}
        )
        code, _, field = await tool_error(client, "set_profile", timezone="Mars/Olympus")
    assert before["timezone"] is None and after["timezone"] == "Asia/Tokyo"
    assert task["recurrence"]["timezone"] == "Asia/Tokyo"
    assert task["reminders"] == [{"before": "PT10M", "at": None}]
    assert (code, field) == ("INVALID_INPUT", "timezone")


async def test_a_chatbot_reads_a_task_and_a_series_as_resources_and_plans_the_day(stack: Stack) -> None:
    async with mcp_client(stack, new_user()) as client:
        instructions = client.instructions
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        task = await add_daily(client)
        overdue = await call(client, "add_task", title="Pay the rent", due_at="2020-01-01T09:00:00Z")
        read = await client.read_resource(f"todo://tasks/{task['id']}")
        series = await client.read_resource(f"todo://series/{task['series_id']}")
        plan = await client.get_prompt("plan_my_day")
        with pytest.raises(MCPError, match="No task"):
            await client.read_resource(f"todo://tasks/{uuid.uuid4()}")
    assert instructions is not None and "reopen_task" in instructions and "get_profile" in instructions
    assert templates == {"todo://tasks/{task_id}", "todo://series/{series_id}"}
    assert [a.name for a in prompts["plan_my_day"].arguments or []] == ["day"]
    as_read = json.loads(read.contents[0].text)
    assert {k: as_read[k] for k in ("id", "title", "due_at", "series_id")} == {
        k: task[k] for k in ("id", "title", "due_at", "series_id")
    }
    shown = json.loads(series.contents[0].text)
    assert shown["id"] == task["series_id"] and shown["coming"]["occurrences"][0]["status"] == "current"
    text = plan.messages[0].content.text
    overdue_part, _, rest = text.partition("Due on ")
    assert f"task_id {overdue['id']}" in overdue_part and f"task_id {task['id']}" in rest


async def test_update_and_delete_by_tool(stack: Stack) -> None:
    async with mcp_client(stack, new_user()) as client:
        task = await call(client, "add_task", title="Call mum", due_at="2030-05-01T18:00:00+02:00")
        changed = await call(
            client, "update_task", task_id=task["id"], title="Call mum and dad", description=None
        )
        assert (changed["title"], changed["due_at"]) == ("Call mum and dad", "2030-05-01T16:00:00Z")
        deleted = await call(client, "delete_task", task_id=task["id"])
        assert deleted == {"deleted": True, "task_id": task["id"], "scope": "occurrence"}
        assert (await tool_error(client, "complete_task", task_id=task["id"]))[0] == "NOT_FOUND"


# ---- errors -------------------------------------------------------------------------


async def test_a_bad_rule_is_a_tool_error_with_a_code_and_a_sentence(stack: Stack) -> None:
    async with mcp_client(stack, new_user()) as client:
        code, text, field = await tool_error(
            client,
            "add_task",
            title="Full moon walk",
            due_at="2030-01-01T21:00:00Z",
            recurrence={"rule": "every blue moon"},
        )
        assert (code, field) == ("INVALID_RECURRENCE_RULE", "recurrence.rule")
        assert "'every blue moon' is not a valid RRULE or pattern" in text and "FREQ=" in text

        preview = await tool_error(
            client, "preview_recurrence", rule="FREQ=FORTNIGHTLY", dtstart="2030-01-01T09:00:00"
        )
        assert preview[0] == "INVALID_RECURRENCE_RULE"
        task = await call(client, "add_task", title="Plain", due_at="2030-01-01T09:00:00Z")
        update = await tool_error(client, "update_task", task_id=task["id"], recurrence={"rule": "sometimes"})
        assert update[0] == "INVALID_RECURRENCE_RULE"

        zone = await tool_error(
            client,
            "add_task",
            title="x",
            due_at="2030-01-01T09:00:00Z",
            recurrence={"rule": "daily", "timezone": "Mars/Olympus"},
        )
        assert zone[0] == "UNKNOWN_TIMEZONE" and zone[2] == "recurrence.timezone"
        invalid = await tool_error(client, "add_task", title="", due_at="tomorrow")
        assert invalid[0] == "INVALID_INPUT" and "title" in invalid[1] and "due_at" in invalid[1]
        assert (await tool_error(client, "no_such_tool"))[0] == "UNKNOWN_TOOL"

        # Nothing half-made: only the plain task exists.
        page = await call(client, "list_tasks")
        assert [t["title"] for t in page["items"]] == ["Plain"]


async def test_a_chatbot_lists_what_is_coming_skips_one_date_and_moves_another(stack: Stack) -> None:
    async with mcp_client(stack, new_user()) as client:
        first = await add_daily(client)
        series_id = first["series_id"]
        listed = (await call(client, "list_occurrences", series_id=series_id, limit=4))["occurrences"]
        day = [o["due_at"] for o in listed]

        await call(client, "skip_occurrence", task_id=first["id"], due_at=day[1])
        moved = await call(
            client, "move_occurrence", series_id=series_id, due_at=day[2], to=day[2][:11] + "20:00:00"
        )
        # A date already left out is no longer one to move.
        code, _, field = await tool_error(
            client, "move_occurrence", series_id=series_id, due_at=day[1], to=day[3]
        )

        coming = await call(client, "list_occurrences", series_id=series_id, limit=3)
    assert moved["exdates"] == [day[1], day[2]] and len(moved["rdates"]) == 1
    assert [(o["status"], o["index"]) for o in coming["occurrences"]] == [
        ("current", 1),
        ("moved", 2),
        ("planned", 3),
    ]
    assert coming["occurrences"][1]["due_at"] == moved["rdates"][0]
    assert coming["skipped"] == [day[1], day[2]]
    assert (code, field) == ("INVALID_INPUT", "due_at")


async def test_another_users_token_reaches_none_of_the_tasks(stack: Stack) -> None:
    async with mcp_client(stack, new_user()) as alice:
        task = await add_daily(alice, "Alice's plants")
    async with mcp_client(stack, new_user()) as bob:
        assert (await call(bob, "list_tasks"))["items"] == []
        assert (await call(bob, "list_tasks", series_id=task["series_id"]))["items"] == []
        attempts = [
            ("complete_task", {"task_id": task["id"]}),
            ("reopen_task", {"task_id": task["id"]}),
            ("update_task", {"task_id": task["id"], "title": "Bob's now"}),
            ("delete_task", {"task_id": task["id"]}),
            ("delete_task", {"task_id": task["id"], "scope": "series"}),
            ("skip_occurrence", {"task_id": task["id"]}),
            ("get_series_status", {"series_id": task["series_id"]}),
            ("list_occurrences", {"series_id": task["series_id"]}),
            (
                "move_occurrence",
                {"series_id": task["series_id"], "due_at": task["due_at"], "to": task["due_at"]},
            ),
            ("snooze_reminder", {"task_id": task["id"], "minutes": 10}),
        ]
        for tool, arguments in attempts:
            code, _, _ = await tool_error(bob, tool, **arguments)
            assert code == "NOT_FOUND", tool
    async with mcp_client(stack, task["user_id"]) as alice:
        series = await call(alice, "get_series_status", series_id=task["series_id"])
    assert series["status"] == "active" and series["occurrences_created"] == 1
    assert series["current_task"]["title"] == "Alice's plants"
    assert series["current_task"]["status"] == "pending"


async def test_snooze_reminder_sends_a_reminder_that_went_out_again(stack: Stack) -> None:
    due = (datetime.now(UTC) + timedelta(minutes=5)).replace(microsecond=0)
    async with mcp_client(stack, new_user()) as client:
        # Its reminder falls due at once: 4 min 59 s before a due time 5 min away.
        task = await call(
            client,
            "add_task",
            title="Call the bank",
            due_at=due.isoformat(),
            reminders=[{"before": "PT4M59S"}],
        )

        async def sent() -> bool:
            page = await call(client, "list_tasks", status="pending")
            mine = next(t for t in page["items"] if t["id"] == task["id"])
            return bool(mine["reminder_status"][0]["status"] == "sent")

        await eventually(sent, "the reminder to be sent")
        snoozed = await call(client, "snooze_reminder", task_id=task["id"], minutes=10)
        assert snoozed["status"] == "scheduled"
        again_in = datetime.fromisoformat(snoozed["scheduled_for"]) - datetime.now(UTC)
        assert timedelta(minutes=9) < again_in <= timedelta(minutes=10)
        code, _, field = await tool_error(client, "snooze_reminder", task_id=task["id"], minutes=0)
        assert code == "INVALID_INPUT" and field == "minutes"


async def test_the_user_comes_from_the_token_never_from_an_argument(stack: Stack) -> None:
    user = new_user()
    async with mcp_client(stack, user) as client:
        task = await call(client, "add_task", title="Mine", user_id="someone-else")
    assert task["user_id"] == user


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-jwt", f"Bearer {token_for('someone', ttl_seconds=-60)}", "Basic dXNlcjpwYXNz"],
)
async def test_a_request_without_a_valid_token_is_rejected(stack: Stack, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    raw = httpx.post(
        f"{stack.app_url}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={**headers, "Accept": "application/json, text/event-stream"},
    )
    assert raw.status_code == 401
    assert raw.headers["content-type"] == "application/problem+json"
    assert raw.headers["www-authenticate"] == "Bearer"
    assert raw.json()["code"] == "UNAUTHORIZED"

    with pytest.raises(ExceptionGroup) as failed:
        async with mcp_client(stack, None, headers=headers) as client:
            await client.list_tools()
    assert failed.group_contains(MCPError)


async def test_an_unlisted_host_is_refused(stack: Stack) -> None:
    with pytest.raises(ExceptionGroup):
        async with mcp_client(stack, new_user(), headers={"Host": f"{CLUSTER_HOST}:8000"}) as client:
            await client.list_tools()
    raw = httpx.post(
        f"{stack.app_url}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={**auth(new_user()), "Host": "evil.example", "Accept": "application/json, text/event-stream"},
    )
    assert raw.status_code == 421


# ---- behind a Kubernetes Service: hosts allowed by settings -------------------------


@pytest.fixture(scope="module")
def service_stack() -> Iterator[Stack]:
    """The app configured with the names a Kubernetes Service gives it."""
    with running_stack(
        "mcp-hosts",
        TODO_MCP_ALLOWED_HOSTS=f"{CLUSTER_HOST}:*,todo-api,todo-api:*",
        TODO_MCP_ALLOWED_ORIGINS="https://chat.example.com",
    ) as running:
        yield running


async def test_a_host_allowed_by_settings_is_served(service_stack: Stack) -> None:
    user = new_user()
    for host in (f"{CLUSTER_HOST}:8000", "todo-api"):
        async with mcp_client(
            service_stack, user, headers={"Host": host, "Origin": "https://chat.example.com"}
        ) as client:
            assert set(t.name for t in (await client.list_tools()).tools) == TOOLS
            task = await call(client, "add_task", title=f"via {host}")
            assert task["user_id"] == user
    for refused, status in (
        ({"Host": "127.0.0.1:1"}, 421),
        ({"Host": "todo-api", "Origin": "https://evil.example"}, 403),
    ):
        raw = httpx.post(
            f"{service_stack.app_url}/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={**auth(user), **refused, "Accept": "application/json, text/event-stream"},
        )
        assert raw.status_code == status, refused
