"""Started workflows are recorded in batches: what is kept, what is given back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.helpers import series_row
from todos.core.settings import Settings
from todos.series.contract import SeriesState
from todos.series.models import Series
from todos.series.starts import StartedWorkflows, WorkflowStarts

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)


class FakeWorkflows:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.started: list[str] = []

    def start_series(self, state: SeriesState) -> None:
        if self.fail:
            raise ConnectionError("sidecar unreachable")
        self.started.append(state.series_id)


def a_series() -> Series:
    return series_row(NOW)


class NoDatabase:
    def session(self) -> Any:
        raise AssertionError("no transaction expected")


def a_service(workflows: FakeWorkflows, database: Any = None) -> WorkflowStarts:
    return WorkflowStarts(database or NoDatabase(), workflows, Settings(env="dev"), clock=lambda: NOW)  # type: ignore[arg-type]


def test_a_batch_is_taken_once_and_keeps_the_first_start_time() -> None:
    started = StartedWorkflows()
    series_id = uuid.uuid4()
    started.add(series_id, NOW)
    started.add(series_id, NOW + timedelta(seconds=5))  # the sweeper's start of the same series

    assert started.take() == {series_id: NOW}
    assert started.take() == {}


def test_a_batch_given_back_is_taken_again_without_losing_newer_starts() -> None:
    started = StartedWorkflows()
    first, second = uuid.uuid4(), uuid.uuid4()
    started.add(first, NOW)
    batch = started.take()
    started.add(second, NOW + timedelta(seconds=1))

    started.give_back(batch)

    assert started.take() == {first: NOW, second: NOW + timedelta(seconds=1)}


def test_only_a_start_daprd_accepted_waits_to_be_recorded() -> None:
    accepted = a_service(FakeWorkflows())
    refused = a_service(FakeWorkflows(fail=True))
    series = a_series()

    accepted.start(series)
    refused.start(series)

    assert accepted.started.take() == {series.id: NOW}
    # Left unrecorded: the sweeper finds it and starts it again.
    assert refused.started.take() == {}


def test_recording_nothing_opens_no_transaction() -> None:
    assert a_service(FakeWorkflows()).record_started() == 0


def test_a_batch_the_database_refused_is_recorded_on_the_next_call() -> None:
    written: list[list[dict[str, Any]]] = []
    database_up = False

    class Connection:
        def execute(self, _statement: object, rows: list[dict[str, Any]]) -> None:
            written.append(rows)

    class Session:
        def connection(self) -> Connection:
            return Connection()

    class Database:
        @contextmanager
        def session(self) -> Iterator[Session]:
            if not database_up:
                raise ConnectionError("database restarting")
            yield Session()

    service = a_service(FakeWorkflows(), Database())
    series = a_series()
    service.start(series)

    with pytest.raises(ConnectionError):
        service.record_started()
    database_up = True

    assert service.record_started() == 1
    assert written == [[{"series_id": series.id, "started_at": NOW}]]
    assert service.record_started() == 0
