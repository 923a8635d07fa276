"""The `kafka` profile: a real KRaft broker, and daprd's Kafka pub/sub
component talking to it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from devstack import kafka
from devstack.stack import Stack
from tests.integration.support import start_stack

pytestmark = [pytest.mark.integration, pytest.mark.kafka, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def kafka_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("stack-kafka"), profile="kafka")
    yield running
    running.stop()


def test_stack_creates_the_topics_with_twelve_partitions(kafka_stack: Stack) -> None:
    from confluent_kafka.admin import AdminClient

    topics = AdminClient({"bootstrap.servers": kafka_stack.kafka_bootstrap}).list_topics(timeout=10).topics
    for name in kafka.TOPICS:
        assert name in topics
        assert len(topics[name].partitions) == kafka.PARTITIONS


def test_publish_through_the_sidecar_reaches_kafka(kafka_stack: Stack) -> None:
    marker = str(uuid.uuid4())
    response = httpx.post(
        f"{kafka_stack.dapr_http_url}/v1.0/publish/taskpubsub/task-events",
        params={"metadata.partitionKey": "alice"},
        json={"marker": marker},
        timeout=30,
    )
    assert response.status_code == 204, response.text

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_stack.kafka_bootstrap,
            "group.id": f"test-{marker}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        # Explicit offsets: with none, the client first asks the group
        # coordinator for committed ones, and a fresh broker answers
        # NOT_COORDINATOR until __consumer_offsets exists (the poll then
        # yields only that error).
        consumer.assign([TopicPartition("task-events", p, OFFSET_BEGINNING) for p in range(kafka.PARTITIONS)])
        found = None
        for _ in range(60):
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            envelope = json.loads(message.value())
            if envelope.get("data", {}).get("marker") == marker:
                found = message
                break
        assert found is not None, "the published message never appeared on task-events"
        # Dapr wraps the payload in a CloudEvent and keys the record by the partition key.
        assert found.key() == b"alice"
        envelope = json.loads(found.value())
        assert envelope["specversion"] == "1.0" and envelope["topic"] == "task-events"
    finally:
        consumer.close()
