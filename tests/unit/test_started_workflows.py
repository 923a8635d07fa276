"""Started workflows are recorded in batches: what is kept, what is given back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.helpers import series_row
from todos import service as service_module
from todos.models import Series
from todos.orchestration import SeriesState
from todos.service import StartedWorkflows, TaskService
from todos.settings import Settings

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


def a_service(workflows: FakeWorkflows) -> TaskService:
    return TaskService(workflows, Settings(env="dev"), clock=lambda: NOW, jobs=None)  # type: ignore[arg-type]


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

    accepted._start_workflow(series)
    refused._start_workflow(series)

    assert accepted.started.take() == {series.id: NOW}
    # Left unrecorded: the sweeper finds it and starts it again.
    assert refused.started.take() == {}


def test_recording_nothing_opens_no_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_database() -> Any:
        raise AssertionError("no transaction expected")

    monkeypatch.setattr(service_module, "session_scope", no_database)

    assert a_service(FakeWorkflows()).record_started() == 0


def test_a_batch_the_database_refused_is_recorded_on_the_next_call(monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[list[dict[str, Any]]] = []
    database_up = False

    class Connection:
        def execute(self, _statement: object, rows: list[dict[str, Any]]) -> None:
            written.append(rows)

    class Session:
        def connection(self) -> Connection:
            return Connection()

    @contextmanager
    def session_scope() -> Iterator[Session]:
        if not database_up:
            raise ConnectionError("database restarting")
        yield Session()

    monkeypatch.setattr(service_module, "session_scope", session_scope)
    service = a_service(FakeWorkflows())
    series = a_series()
    service._start_workflow(series)

    with pytest.raises(ConnectionError):
        service.record_started()
    database_up = True

    assert service.record_started() == 1
    assert written == [[{"series_id": series.id, "started_at": NOW}]]
    assert service.record_started() == 0
