"""One user's recurring task from the chatbot's first tool call to the series'
end, on the stack `./task up` runs (each profile), then Ctrl-C: every part of
the product in one story, each seen where its user sees it (the chatbot through
MCP, the user's mailbox, the operator's commands, the audit trail, Kafka)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.e2e.conftest import UpStack, processes_of
from tests.integration.mcp_support import call, eventually, mcp_session, tool_error
from tests.integration.support import read_topic
from todos.events.schema import REMINDERS, TASK_EVENTS, TOPIC_OF

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

NEW_YORK = ZoneInfo("America/New_York")
TITLE = "Send the stand-up notes"
# The reminder falls due LEAD seconds from now, BEFORE seconds ahead of the task.
LEAD, BEFORE = 6, 10


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token.strip()}"}


def local_text(instant: datetime) -> str:
    """How a reminder email writes a time, e.g. "09:30 EST"."""
    local = instant.astimezone(NEW_YORK)
    return f"{local:%H:%M} {local.tzname()}"


def utc_text(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def mail_to(up: UpStack, address: str) -> list[dict[str, Any]]:
    """What `./task mail -- --json` lists for `address`."""
    messages = json.loads(await asyncio.to_thread(up.cli, "devstack", "mail", "--json"))
    return [m for m in messages if address in m["rcpt_tos"]]


async def workflow_status(up: UpStack, instance_id: str) -> dict[str, Any]:
    """What `./task wf -- status ID --json` prints."""
    return json.loads(  # type: ignore[no-any-return]
        await asyncio.to_thread(up.cli, "api.ops_cli", "status", instance_id, "--json")
    )


def received(email: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(email["received_ts"], UTC)


def reminder_job(up: UpStack, task_id: str) -> dict[str, Any] | None:
    response = httpx.get(f"{up.urls['Dapr HTTP']}/v1.0/jobs/reminder-{task_id}-0", timeout=10)
    return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]


async def history(audit: httpx.AsyncClient, headers: dict[str, str], task_id: str) -> list[dict[str, Any]]:
    response = await audit.get(f"/v1/tasks/{task_id}/history", headers=headers)
    return response.json()["events"] if response.status_code == 200 else []  # type: ignore[no-any-return]


async def test_a_recurring_task_from_the_first_tool_call_to_the_end_of_its_series(up: UpStack) -> None:
    on_kafka = up.profile == "kafka"
    assert set(up.urls) == {"API", "audit", "Dapr HTTP", *(["Kafka"] if on_kafka else [])}, up.printed()
    user, stranger = f"e2e-{uuid.uuid4().hex[:8]}", f"e2e-{uuid.uuid4().hex[:8]}"
    address = f"{user}@example.com"
    # `./task token -- USER`; the user's own zone is Paris, the series' New York.
    headers = bearer(up.cli("devstack", "token", user, "--zoneinfo", "Europe/Paris"))
    strangers = bearer(up.cli("devstack", "token", stranger))

    async with httpx.AsyncClient(base_url=up.urls["API"], timeout=30) as api:
        # The README's first request: curl with a token.
        assert (await api.get("/readyz")).status_code == 200
        listed = await api.get("/v1/tasks", headers=headers)
        assert listed.status_code == 200 and listed.json()["items"] == []
        assert (await api.get("/v1/tasks")).status_code == 401

    due = (datetime.now(UTC) + timedelta(seconds=LEAD + BEFORE)).replace(microsecond=0)
    remind_at = due - timedelta(seconds=BEFORE)
    async with mcp_session(up.urls["API"], headers) as chat:
        # "Remind me every day at this time to send the stand-up notes."
        preview = await call(
            chat,
            "preview_recurrence",
            rule="daily",
            dtstart=due.astimezone(NEW_YORK).replace(tzinfo=None).isoformat(),
            timezone="America/New_York",
            limit=2,
        )
        tomorrow = (due.astimezone(NEW_YORK) + timedelta(days=1)).astimezone(UTC)
        assert preview["occurrences"] == [utc_text(due), utc_text(tomorrow)]
        first = await call(
            chat,
            "add_task",
            title=TITLE,
            priority="high",
            tags=["work"],
            due_at=due.isoformat(),
            reminders=[{"before": f"PT{BEFORE}S"}],
            recurrence={"rule": "daily", "timezone": "America/New_York"},
        )
        assert first["occurrence_index"] == 1 and first["series_id"]
        instance = f"series-{first['series_id']}"

        # The reminder email: once, never early, the due time in the series' zone.
        async def emails(count: int) -> list[dict[str, Any]] | None:
            found = await mail_to(up, address)
            return found if len(found) >= count else None

        email = (await eventually(lambda: emails(1), "the reminder email", timeout=90))[0]
        assert received(email) >= remind_at
        assert TITLE in email["subject"] and local_text(due) in email["subject"]
        assert TITLE in email["text"] and TITLE in email["html"]

        async def reminder_sent() -> bool:
            page = await call(chat, "list_tasks", series_id=first["series_id"])
            return bool(page["items"][0]["reminder_status"][0]["status"] == "sent")

        await eventually(reminder_sent, "the reminder marked sent")

        # "Remind me again in a minute." The scheduler fires the re-armed job.
        snoozed = await call(chat, "snooze_reminder", task_id=first["id"], minutes=1)
        again_at = datetime.fromisoformat(snoozed["scheduled_for"])
        sent = await eventually(lambda: emails(2), "the snoozed reminder's email", timeout=150)
        assert len(sent) == 2 and received(sent[1]) >= again_at
        assert TITLE in sent[1]["subject"]

        # "Done!" The workflow creates tomorrow's occurrence.
        done = await call(chat, "complete_task", task_id=first["id"])
        assert done["status"] == "completed"

        async def next_occurrence() -> dict[str, Any] | None:
            page = await call(chat, "list_tasks", series_id=first["series_id"], status="pending")
            return next((t for t in page["items"] if t["occurrence_index"] == 2), None)

        second = await eventually(next_occurrence, "occurrence #2")
        assert datetime.fromisoformat(second["due_at"]) == tomorrow
        copied = ("title", "priority", "tags", "reminders")
        assert {key: second[key] for key in copied} == {key: first[key] for key in copied}

        async def series_moved_on() -> dict[str, Any] | None:
            series = await call(chat, "get_series_status", series_id=first["series_id"])
            workflow = series["workflow"]
            on_second = (workflow.get("custom_status") or {}).get("current_task_id") == second["id"]
            return series if workflow["runtime_status"] == "RUNNING" and on_second else None

        series = await eventually(series_moved_on, "the series workflow waiting on occurrence #2")
        assert series["status"] == "active" and series["occurrences_created"] == 2
        assert series["text"].startswith("daily at ") and "(America/New_York)" in series["text"]
        # Armed by the step's next activity, done once the workflow waits on #2 (it is visible before).
        job = reminder_job(up, second["id"])
        assert job is not None, "occurrence #2 has no reminder job"
        assert datetime.fromisoformat(job["dueTime"]) == tomorrow - timedelta(seconds=BEFORE)

        # Another user's chatbot reaches none of it.
        async with mcp_session(up.urls["API"], strangers) as other:
            assert (await call(other, "list_tasks"))["items"] == []
            for tool, arguments in (
                ("get_series_status", {"series_id": first["series_id"]}),
                ("complete_task", {"task_id": second["id"]}),
                ("delete_task", {"task_id": second["id"], "scope": "series"}),
            ):
                assert (await tool_error(other, tool, **arguments))[0] == "NOT_FOUND", tool

        # "Stop reminding me about the stand-up notes."
        stopped = await call(chat, "delete_task", task_id=second["id"], scope="series")
        assert stopped == {"deleted": True, "task_id": second["id"], "scope": "series"}
        assert (await call(chat, "get_series_status", series_id=first["series_id"]))["status"] == "stopped"

    # The operator's view (`./task wf -- status`) and the owner's (the inspect API) agree.
    async def ended() -> dict[str, Any] | None:
        status = await workflow_status(up, instance)
        return status if status["runtime_status"] == "COMPLETED" else None

    await eventually(ended, "the series workflow to complete")
    async with httpx.AsyncClient(base_url=up.urls["API"], timeout=30) as api:
        inspected = await api.get(f"/v1/workflows/{instance}", headers=headers)
        assert inspected.status_code == 200 and inspected.json()["runtime_status"] == "COMPLETED"
        assert (await api.get(f"/v1/workflows/{instance}", headers=strangers)).status_code == 404
    assert reminder_job(up, second["id"]) is None

    # The audit trail holds the story, in order, each event once.
    async with httpx.AsyncClient(base_url=up.urls["audit"], timeout=30) as audit:
        expected = {
            first["id"]: [
                "task.created",
                *["reminder.scheduled", "reminder.sent"] * 2,  # the reminder, then its snooze
                "task.completed",
            ],
            second["id"]: ["task.created", "reminder.scheduled", "task.deleted"],
        }

        async def told() -> dict[str, list[dict[str, Any]]] | None:
            found = {task_id: await history(audit, headers, task_id) for task_id in expected}
            return found if all(len(found[t]) >= len(types) for t, types in expected.items()) else None

        stories = await eventually(told, "both tasks' histories")
        await asyncio.sleep(3)  # time for a duplicate to arrive, were there one
        stories = {task_id: await history(audit, headers, task_id) for task_id in expected}
    assert {t: [e["event_type"] for e in events] for t, events in stories.items()} == expected
    assert {e["series_id"] for events in stories.values() for e in events} == {first["series_id"]}

    if on_kafka:
        assert_on_kafka(up, user, [e for events in stories.values() for e in events])

    # Nothing more was sent: the second occurrence's reminder went with its series.
    assert len(await mail_to(up, address)) == 2


def assert_on_kafka(up: UpStack, user: str, audited: list[dict[str, Any]]) -> None:
    """Kafka holds the audited events, keyed by the user: one partition per topic keeps their order.
    (task-updates carries the field diffs of the same changes, which the history leaves out.)"""

    def ours(value: bytes) -> bool:
        data = json.loads(value).get("data")
        return isinstance(data, dict) and data.get("user_id") == user

    for topic in (TASK_EVENTS, REMINDERS):
        wanted = {str(e["event_id"]) for e in audited if TOPIC_OF[e["event_type"]] == topic}
        messages = read_topic(up.urls["Kafka"], topic, ours, len(wanted), timeout=60)
        # Sets: Kafka may hold a copy of one (at-least-once); the audit log holds each once.
        assert {json.loads(m.value())["data"]["event_id"] for m in messages} == wanted, topic
        assert {m.key() for m in messages} == {user.encode()}
        assert len({m.partition() for m in messages}) == 1, topic


def test_stopping_the_stack_leaves_no_process(up: UpStack) -> None:
    """Ctrl-C in the terminal of `./task up` (kafka profile), or `./task down`
    from another terminal (default profile)."""
    recorded = up.recorded_pids()
    parts = {"postgres", "smtp", "placement", "scheduler", "daprd-api", "app-api", "daprd-audit", "app-audit"}
    assert set(recorded) == parts | ({"kafka"} if up.profile == "kafka" else set())
    # What the check below looks for is there while the stack runs.
    running = processes_of(up.run_dir)
    assert set(recorded.values()) <= set(running), running
    if up.profile == "kafka":
        assert up.interrupt() == 0, up.printed()[-2000:]
    else:
        assert "The stack is stopped." in up.cli("devstack", "down", stderr=True)
        assert up.process.wait(timeout=10) == 0, up.printed()[-2000:]
        assert not (up.run_dir / "stack.json").exists()
    assert "Stopping the local stack" in up.printed()
    assert processes_of(up.run_dir) == {}
