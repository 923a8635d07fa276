"""The relay's ordering rules, with a fake publisher (no sidecar)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from todos.events.relay import Pending, publish_in_order, waves

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def row(row_id: int, key: str, topic: str = "task-events") -> Pending:
    return Pending(id=row_id, topic=topic, key=key, body="{}", created_at=NOW)


class FakePublisher:
    """Records each request; fails the ids in `fail` (or every request once `down`)."""

    def __init__(self, fail: set[int] | None = None, down: bool = False) -> None:
        self.fail = fail or set()
        self.down = down
        self.requests: list[tuple[str, list[int]]] = []

    def publish(self, topic: str, rows: Sequence[Pending]) -> dict[int, str]:
        ids = [r.id for r in rows]
        self.requests.append((topic, ids))
        if self.down:
            return dict.fromkeys(ids, "UNAVAILABLE: broker down")
        return {i: "refused" for i in ids if i in self.fail}

    def close(self) -> None:
        pass


def test_a_wave_holds_at_most_one_event_per_topic_and_user() -> None:
    batch = [row(1, "a"), row(2, "a"), row(3, "b"), row(4, "a", "task-updates"), row(5, "a")]
    assert [[r.id for r in wave] for wave in waves(batch)] == [[1, 3, 4], [2], [5]]


def test_events_go_out_in_order_per_chain() -> None:
    publisher = FakePublisher()
    batch = [row(1, "a"), row(2, "b"), row(3, "a"), row(4, "a", "task-updates"), row(5, "b")]
    outcome = publish_in_order(publisher, batch)
    assert [r.id for r in outcome.published] == [1, 2, 4, 3, 5]
    assert not outcome.broken
    assert publisher.requests == [
        ("task-events", [1, 2]),
        ("task-updates", [4]),
        ("task-events", [3, 5]),
    ]


def test_a_failed_event_holds_back_the_rest_of_its_chain_only() -> None:
    publisher = FakePublisher(fail={1})
    batch = [row(1, "a"), row(2, "b"), row(3, "a"), row(4, "b"), row(5, "a", "task-updates")]
    outcome = publish_in_order(publisher, batch)
    assert outcome.failed == {1: "refused"}
    # b's chain and a's other topic carry on; a's later task-events (3) waits.
    assert sorted(r.id for r in outcome.published) == [2, 4, 5]
    assert all(3 not in ids for _, ids in publisher.requests)


def test_a_request_failing_whole_ends_the_round() -> None:
    publisher = FakePublisher(down=True)
    batch = [row(1, "a"), row(2, "b"), row(3, "a")]
    outcome = publish_in_order(publisher, batch)
    assert outcome.published == []
    assert set(outcome.failed) == {1, 2}
    assert len(publisher.requests) == 1
