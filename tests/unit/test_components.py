"""The Dapr subscriptions each profile's sidecars load (common/ + <profile>/)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from devstack.kafka import EVENT_TOPICS as TOPICS
from devstack.paths import COMPONENTS_DIR
from devstack.stack import PROFILES

pytestmark = pytest.mark.unit


def subscriptions(profile: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for directory in ("common", profile):
        for path in sorted((COMPONENTS_DIR / directory).glob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                if doc and doc["kind"] == "Subscription":
                    assert doc["spec"]["topic"] not in found, f"{path}: a second subscription to a topic"
                    found[doc["spec"]["topic"]] = doc
    return found


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_subscribes_the_audit_role_to_each_topic_and_to_its_dead_letters(profile: str) -> None:
    subs = subscriptions(profile)
    assert set(subs) == {*TOPICS, *(f"{topic}-dlq" for topic in TOPICS)}
    for topic in TOPICS:
        assert subs[topic]["spec"]["deadLetterTopic"] == f"{topic}-dlq"
        assert subs[topic]["scopes"] == ["todo-audit"]


def test_the_kafka_profile_delivers_events_in_bulk() -> None:
    for topic in TOPICS:
        assert subscriptions("kafka")[topic]["spec"]["bulkSubscribe"]["enabled"] is True


def test_the_in_memory_broker_is_not_subscribed_in_bulk() -> None:
    """pubsub.in-memory hands a topic's messages over one at a time, each
    waiting for the app's answer: a bulk batch never holds a second message,
    and its window becomes a wait before every message, paid by the relay's
    publish (about 100 events/s per topic at 10 ms)."""
    for topic in TOPICS:
        assert "bulkSubscribe" not in subscriptions("default")[topic]["spec"]
