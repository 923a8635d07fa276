"""GET /v1/series/{id} combines the series row with its workflow's status,
read one after the other: a workflow that ends between the two reads must not
be shown beside the series as it was before its end."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from tests.helpers import series_row
from todos.core.settings import Settings
from todos.core.users import User
from todos.dapr import WorkflowInfo
from todos.series.models import Series, SeriesStatus
from todos.series.service import SeriesService

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
ALICE = User(id="alice")


def a_series(status: SeriesStatus) -> Series:
    return series_row(NOW, rule="FREQ=DAILY;COUNT=3", status=status, current_task_id=None)


class Workflows:
    def __init__(self, runtime_status: str) -> None:
        self.runtime_status = runtime_status

    def describe(self, instance: str) -> WorkflowInfo:
        return WorkflowInfo(
            instance, "recurring_task_workflow", self.runtime_status, NOW, NOW, None, None, None, None
        )


def viewed(monkeypatch: pytest.MonkeyPatch, runtime_status: str, rows: list[Series]) -> tuple[str, int]:
    """What get_series says (series status) and how many times it read the row,
    the database answering with `rows` in turn."""
    # No database: the rows come from `load`.
    service = SeriesService(
        ledger=None,  # type: ignore[arg-type]
        workflows=Workflows(runtime_status),  # type: ignore[arg-type]
        uow=None,  # type: ignore[arg-type]
        emitter=None,  # type: ignore[arg-type]
        settings=Settings(env="dev"),
        clock=lambda: NOW,
    )
    reads = iter(rows)
    count = 0

    def load(self: SeriesService, user: User, series_id: uuid.UUID) -> tuple[Series, None]:
        nonlocal count
        count += 1
        return next(reads), None

    monkeypatch.setattr(SeriesService, "_load", load)
    return service.get_series(ALICE, rows[0].id).status, count


def test_a_workflow_that_ended_after_the_row_was_read_is_shown_with_the_row_read_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before, after = a_series(SeriesStatus.active), a_series(SeriesStatus.finished)
    assert viewed(monkeypatch, "COMPLETED", [before, after]) == ("finished", 2)


@pytest.mark.parametrize(
    ("runtime_status", "status"),
    [
        ("RUNNING", SeriesStatus.active),
        ("COMPLETED", SeriesStatus.finished),
        ("COMPLETED", SeriesStatus.stopped),
    ],
)
def test_a_consistent_first_read_is_the_only_one(
    monkeypatch: pytest.MonkeyPatch, runtime_status: str, status: SeriesStatus
) -> None:
    assert viewed(monkeypatch, runtime_status, [a_series(status)]) == (status.value, 1)
