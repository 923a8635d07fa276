"""Task events: outbox -> Dapr pub/sub -> audit log, on both profiles.

Each profile gets a stack of its own (module scope, parametrized): `kafka`
runs a real broker; `default` runs pubsub.in-memory, whose broker lives in the
audit role's sidecar (the stack moves the relay there), so "the broker is
down" means that sidecar is down.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from devstack import kafka
from devstack.stack import Stack
from tests.helpers import auth
from tests.integration.support import history, read_topic, running_stack, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

EVENTS_ENV = {
    "TODO_OUTBOX_MAX_BACKOFF_SECONDS": "2",
    "TODO_OUTBOX_PRUNE_INTERVAL_SECONDS": "1",
}


@pytest.fixture(
    scope="module",
    params=[pytest.param("default"), pytest.param("kafka", marks=pytest.mark.kafka)],
)
def events_stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    profile = request.param
    with running_stack(f"events-{profile}", profile=profile, **EVENTS_ENV) as running:
        yield running


@pytest.fixture
def api(events_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=events_stack.app_url, timeout=30) as client:
        yield client


@pytest.fixture
def audit_app(events_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=events_stack.audit_url, timeout=30) as client:
        yield client


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def query(stack: Stack, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def history_types(client: httpx.Client, user: str, task_id: str) -> list[str]:
    return [event["event_type"] for event in history(client, user, task_id)]


def metric(client: httpx.Client, name: str, **labels: str) -> float:
    """The value of one sample on a /metrics page (0 if absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    pattern = re.compile(rf"^{re.escape(name)}(\{{(.*?)\}})? (\S+)$", re.MULTILINE)
    for match in pattern.finditer(client.get("/metrics").text):
        got = ",".join(sorted((match.group(2) or "").split(","))) if match.group(2) else ""
        if got == wanted:
            return float(match.group(3))
    return 0.0


def create(api: httpx.Client, user: str, **body: Any) -> dict[str, Any]:
    response = api.post("/v1/tasks", json={"title": "Water the plants", **body}, headers=auth(user))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def outbox_events(stack: Stack, user: str) -> list[str]:
    return [str(row[0]) for row in query(stack, "SELECT event_id FROM outbox WHERE partition_key = %s", user)]


def audited(stack: Stack, user: str) -> dict[str, int]:
    rows = query(stack, "SELECT event_id, count(*) FROM audit_log WHERE user_id = %s GROUP BY event_id", user)
    return {str(event_id): count for event_id, count in rows}


def publish_raw(stack: Stack, topic: str, data: bytes) -> None:
    """Put bytes on a topic without the outbox: straight to Kafka, or (in the
    default profile) through the sidecar that hosts the in-memory broker."""
    if stack.config.profile == "kafka":
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": stack.kafka_bootstrap})
        producer.produce(topic, value=data, key=b"tests")
        assert producer.flush(30) == 0
        return
    response = httpx.post(
        f"{stack.sidecar_http_url(stack.relay_role)}/v1.0/publish/taskpubsub/{topic}",
        params={"metadata.rawPayload": "true"},
        content=data,
        headers={"content-type": "application/octet-stream"},
        timeout=30,
    )
    assert response.status_code == 204, response.text


def publish_event(stack: Stack, topic: str, event: dict[str, Any]) -> None:
    """Publish an event envelope through the relay's sidecar, as the relay does."""
    response = httpx.post(
        f"{stack.sidecar_http_url(stack.relay_role)}/v1.0/publish/taskpubsub/{topic}",
        params={"metadata.partitionKey": event["user_id"]},
        json=event,
        timeout=30,
    )
    assert response.status_code == 204, response.text


# ---- the audit trail ----------------------------------------------------------


def test_history_holds_create_update_complete_delete_in_order(
    events_stack: Stack, api: httpx.Client, audit_app: httpx.Client
) -> None:
    user = new_user()
    task = create(api, user, tags=["home"])
    task_id = task["id"]
    assert api.patch(f"/v1/tasks/{task_id}", json={"title": "Water the ferns"}, headers=auth(user)).is_success
    assert api.post(f"/v1/tasks/{task_id}/complete", headers=auth(user)).is_success
    # A repeated completion changes nothing, so it is not an event.
    assert api.post(f"/v1/tasks/{task_id}/complete", headers=auth(user)).is_success
    assert api.delete(f"/v1/tasks/{task_id}", headers=auth(user)).status_code == 204

    expected = ["task.created", "task.updated", "task.completed", "task.deleted"]
    wait_until(
        lambda: len(history(audit_app, user, task_id)) >= 4, timeout=60, what="four events in the history"
    )
    events = history(audit_app, user, task_id)
    assert [e["event_type"] for e in events] == expected
    assert all(e["event_version"] == "1.0" for e in events)
    assert events[0]["payload"]["task"]["title"] == "Water the plants"
    assert events[1]["payload"]["changes"] == {"title": {"old": "Water the plants", "new": "Water the ferns"}}
    assert events[2]["payload"]["changes"]["status"] == {"old": "pending", "new": "completed"}
    assert events[3]["payload"]["task"]["status"] == "completed"

    # The field-level diffs went to task-updates: one per change of the task. That topic is
    # consumed apart from task-events, so its rows may land after the history is complete.
    def changed() -> list[tuple[Any, ...]]:
        return query(
            events_stack,
            "SELECT payload FROM audit_log WHERE task_id = %s AND topic = 'task-updates'"
            " ORDER BY occurred_at",
            task_id,
        )

    wait_until(lambda: len(changed()) >= 2, timeout=60, what="two task-updates rows")
    assert [set(row[0]["changes"]) for row in changed()] == [{"title"}, {"status", "completed_at"}]
    # The api role answers the same route from the same table (one base URL).
    assert history(api, user, task_id) == events


def test_reminder_events_follow_the_task_event_that_armed_them(
    events_stack: Stack, api: httpx.Client, audit_app: httpx.Client
) -> None:
    user = new_user()
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    task_id = create(api, user, due_at=due.isoformat(), reminders=[{"before": "PT1H"}])["id"]
    moved = api.patch(
        f"/v1/tasks/{task_id}", json={"due_at": (due + timedelta(days=1)).isoformat()}, headers=auth(user)
    )
    assert moved.is_success, moved.text

    expected = ["task.created", "reminder.scheduled", "task.updated", "reminder.scheduled"]
    wait_until(lambda: len(history(audit_app, user, task_id)) >= 4, timeout=60, what="four events")
    assert history_types(audit_app, user, task_id) == expected
    # The relay publishes in outbox order, which is the order they happened in.
    ordered = query(
        events_stack,
        "SELECT body->>'event_type' FROM outbox WHERE body->>'task_id' = %s ORDER BY id",
        task_id,
    )
    assert [row[0] for row in ordered if row[0] != "task.changed"] == expected


def test_history_is_owner_only(api: httpx.Client, audit_app: httpx.Client) -> None:
    owner = new_user()
    task_id = create(api, owner)["id"]
    wait_until(lambda: history_types(audit_app, owner, task_id) == ["task.created"], what="task.created")
    for client in (audit_app, api):
        other = client.get(f"/v1/tasks/{task_id}/history", headers=auth(new_user()))
        assert other.status_code == 404
        assert other.headers["content-type"] == "application/problem+json"
        assert client.get(f"/v1/tasks/{task_id}/history").status_code == 401
    # A task of this user not audited yet, and one that never existed.
    assert audit_app.get(f"/v1/tasks/{uuid.uuid4()}/history", headers=auth(owner)).status_code == 404


def test_the_audit_role_serves_only_its_routes(events_stack: Stack, audit_app: httpx.Client) -> None:
    assert audit_app.get("/v1/tasks", headers=auth(new_user())).status_code in (404, 405)
    assert audit_app.get("/healthz").status_code == 200
    # Subscription endpoints take calls from daprd only (app API token).
    assert audit_app.post("/events/task-events", json={}).status_code == 401


def test_next_occurrence_made_by_the_workflow_is_audited_once(
    events_stack: Stack, api: httpx.Client, audit_app: httpx.Client
) -> None:
    user = new_user()
    due = datetime.now(ZoneInfo("Europe/Paris")).replace(microsecond=0) + timedelta(days=1)
    first = create(
        api, user, due_at=due.isoformat(), recurrence={"rule": "daily", "timezone": "Europe/Paris"}
    )
    assert api.post(f"/v1/tasks/{first['id']}/complete", headers=auth(user)).is_success

    def second() -> str | None:
        items = api.get("/v1/tasks", params={"series_id": first["series_id"]}, headers=auth(user)).json()
        found = [t["id"] for t in items["items"] if t["occurrence_index"] == 2]
        return found[0] if found else None

    task_id = wait_until(second, timeout=90, what="occurrence #2")
    wait_until(lambda: history_types(audit_app, user, task_id) == ["task.created"], what="its task.created")
    time.sleep(3)  # an activity retry would have added a second one by now
    events = history(audit_app, user, task_id)
    assert [e["event_type"] for e in events] == ["task.created"]
    assert events[0]["series_id"] == first["series_id"]
    assert events[0]["payload"]["task"]["occurrence_index"] == 2


# ---- delivery guarantees ------------------------------------------------------


def test_a_redelivered_event_adds_no_audit_row(
    events_stack: Stack, api: httpx.Client, audit_app: httpx.Client
) -> None:
    user = new_user()
    task_id = create(api, user)["id"]
    wait_until(lambda: history_types(audit_app, user, task_id) == ["task.created"], what="task.created")
    body = query(events_stack, "SELECT body FROM outbox WHERE partition_key = %s", user)[0][0]
    duplicates = metric(audit_app, "todo_audit_duplicates_total")

    publish_event(events_stack, "task-events", body)
    wait_until(
        lambda: metric(audit_app, "todo_audit_duplicates_total") > duplicates,
        timeout=60,
        what="the redelivery to be consumed",
    )
    assert audited(events_stack, user) == {body["event_id"]: 1}
    assert history_types(audit_app, user, task_id) == ["task.created"]


def test_malformed_and_unknown_version_messages_are_dead_lettered(
    events_stack: Stack, api: httpx.Client, audit_app: httpx.Client
) -> None:
    marker = uuid.uuid4().hex
    junk = f"not an event {marker}".encode()
    newer = {
        "event_id": str(uuid.uuid4()),
        "event_type": "task.created",
        "event_version": "2.0",
        "occurred_at": "2026-12-01T09:00:00Z",
        "user_id": new_user(),
        "task_id": str(uuid.uuid4()),
        "payload": {"marker": marker},
    }
    dead = metric(audit_app, "todo_audit_dead_letters_total", topic="task-events-dlq")
    invalid = metric(audit_app, "todo_audit_events_total", type="invalid")
    unsupported = metric(audit_app, "todo_audit_events_total", type="unsupported_version")

    publish_raw(events_stack, "task-events", junk)
    publish_event(events_stack, "task-events", newer)
    publish_raw(events_stack, "task-events", b'{"specversion": "1.0", "data": {"event_type": "nonsense"}}')

    wait_until(
        lambda: metric(audit_app, "todo_audit_dead_letters_total", topic="task-events-dlq") >= dead + 3,
        timeout=90,
        what="three dead letters",
    )
    assert metric(audit_app, "todo_audit_events_total", type="unsupported_version") == unsupported + 1
    assert metric(audit_app, "todo_audit_events_total", type="invalid") >= invalid + 1
    assert query(events_stack, "SELECT count(*) FROM audit_log WHERE event_id = %s", newer["event_id"]) == [
        (0,)
    ]
    if events_stack.config.profile == "kafka":
        found = read_topic(
            events_stack.kafka_bootstrap, "task-events-dlq", lambda value: marker.encode() in value, want=2
        )
        assert len(found) == 2

    # The consumer keeps going.
    user = new_user()
    task_id = create(api, user)["id"]
    wait_until(lambda: history_types(audit_app, user, task_id) == ["task.created"], what="a later event")


def test_published_rows_are_pruned_after_the_retention(events_stack: Stack, api: httpx.Client) -> None:
    user = new_user()
    create(api, user)
    wait_until(
        lambda: (
            query(
                events_stack,
                "SELECT count(*) FROM outbox WHERE partition_key = %s AND published_at IS NOT NULL",
                user,
            )[0][0]
            == 1
        ),
        what="the event published",
    )
    old = uuid.uuid4()
    query(
        events_stack,
        "INSERT INTO outbox (event_id, topic, partition_key, body, created_at, published_at) "
        "VALUES (%s, 'task-events', %s, '{}', now() - interval '3 days', now() - interval '3 days') "
        "RETURNING id",
        old,
        user,
    )
    wait_until(
        lambda: query(events_stack, "SELECT count(*) FROM outbox WHERE event_id = %s", old)[0][0] == 0,
        timeout=60,
        what="the old row pruned",
    )
    # Recent published rows stay (the default retention is a day).
    assert len(outbox_events(events_stack, user)) == 1


# ---- Kafka specifics ----------------------------------------------------------


def test_events_sit_on_kafka_partitions_keyed_by_user(
    events_stack: Stack, api: httpx.Client, audit_app: httpx.Client
) -> None:
    if events_stack.config.profile != "kafka":
        pytest.skip("partitions and keys exist on the kafka profile only")
    users = [new_user() for _ in range(3)]
    for user in users:
        task_id = create(api, user)["id"]
        api.patch(f"/v1/tasks/{task_id}", json={"title": "renamed"}, headers=auth(user))
        api.post(f"/v1/tasks/{task_id}/complete", headers=auth(user))
    wanted = {event_id: user for user in users for event_id in outbox_events(events_stack, user)}
    assert len(wanted) == 15  # per user: created, updated + changed, completed + changed

    def ours(value: bytes) -> bool:
        try:
            data = json.loads(value).get("data")
        except (ValueError, AttributeError):
            return False  # the malformed messages another test put on the topic
        return isinstance(data, dict) and data.get("event_id") in wanted

    messages = read_topic(events_stack.kafka_bootstrap, "task-events", ours, want=9)
    messages += read_topic(events_stack.kafka_bootstrap, "task-updates", ours, want=6)
    assert len(messages) == 15
    partitions: dict[str, set[tuple[str, int]]] = {user: set() for user in users}
    for message in messages:
        event = json.loads(message.value())["data"]
        assert message.key() == event["user_id"].encode()
        assert wanted[event["event_id"]] == event["user_id"]
        partitions[event["user_id"]].add((message.topic(), message.partition()))
    # One partition per user and topic, so each user's events keep their order.
    for user, placed in partitions.items():
        assert sorted(topic for topic, _ in placed) == ["task-events", "task-updates"], user
    for user in users:
        on_partition = [
            json.loads(m.value())["data"]["event_type"]
            for m in sorted(messages, key=lambda m: m.offset())
            if m.topic() == "task-events" and json.loads(m.value())["data"]["user_id"] == user
        ]
        assert on_partition == ["task.created", "task.updated", "task.completed"]


def test_every_topic_and_dead_letter_topic_has_12_partitions_and_7_days(events_stack: Stack) -> None:
    if events_stack.config.profile != "kafka":
        pytest.skip("topics exist on the kafka profile only")
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient({"bootstrap.servers": events_stack.kafka_bootstrap})
    topics = admin.list_topics(timeout=10).topics
    assert {"task-events-dlq", "reminders-dlq", "task-updates-dlq"} <= set(kafka.TOPICS)
    for name in kafka.TOPICS:
        assert len(topics[name].partitions) == 12, name
    futures = admin.describe_configs([ConfigResource("topic", name) for name in kafka.TOPICS])
    for resource, future in futures.items():
        assert future.result(timeout=30)["retention.ms"].value == str(7 * 24 * 3600 * 1000), resource
