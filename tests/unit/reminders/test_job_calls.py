"""Dapr job calls after a commit (todos.reminders.jobs) with a fake Jobs API: the
caller does not wait for a slow sidecar, calls for different jobs go out side
by side, one job's calls keep their order, and what does not fit is left to
the sweeper."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime

import pytest

from todos.reminders.jobs import DeleteJob, JobCalls, ScheduleJob
from todos.reminders.rules import JobData

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)


def schedule(task_id: uuid.UUID, n: int, generation: int = 1) -> ScheduleJob:
    return ScheduleJob(uuid.uuid4(), NOW, JobData(task_id, n, generation))


class SlowJobs:
    """Each call blocks until `release` is set, as a sidecar whose scheduler restarts."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls: list[tuple[str, str, int]] = []
        self.in_flight = 0
        self._lock = threading.Lock()

    def _call(self, kind: str, name: str, generation: int) -> None:
        with self._lock:
            self.in_flight += 1
        assert self.release.wait(10)
        with self._lock:
            self.in_flight -= 1
            self.calls.append((kind, name, generation))

    def schedule(self, name: str, due_at: datetime, data: bytes) -> None:
        import json

        self._call("schedule", name, json.loads(data)["generation"])

    def delete(self, name: str) -> None:
        self._call("delete", name, 0)


def test_the_caller_does_not_wait_and_different_jobs_go_out_side_by_side() -> None:
    jobs = SlowJobs()
    recorded: list[ScheduleJob] = []
    calls = JobCalls(jobs, recorded.extend, lanes=4, capacity=100)
    task = uuid.uuid4()
    futures = calls.submit([schedule(task, n) for n in range(10)])
    assert not any(f.done() for f in futures), "a call finished while the sidecar was stuck"
    deadline = time.monotonic() + 10
    while jobs.in_flight < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert jobs.in_flight > 1, "the calls went out one by one"
    jobs.release.set()
    assert all(f.result(timeout=10) for f in futures)
    assert len(recorded) == 10
    calls.close()


def test_one_jobs_calls_keep_their_order() -> None:
    jobs = SlowJobs()
    jobs.release.set()
    calls = JobCalls(jobs, lambda armed: None, lanes=4, capacity=100)
    task = uuid.uuid4()
    first, again = schedule(task, 0, generation=1), schedule(task, 0, generation=2)
    futures = calls.submit([first, DeleteJob(first.name), again])
    assert all(f.result(timeout=10) for f in futures)
    assert [(kind, generation) for kind, name, generation in jobs.calls if name == first.name] == [
        ("schedule", 1),
        ("delete", 0),
        ("schedule", 2),
    ]
    calls.close()


def test_calls_that_do_not_fit_are_left_to_the_sweeper() -> None:
    jobs = SlowJobs()
    calls = JobCalls(jobs, lambda armed: None, lanes=1, capacity=2)
    task = uuid.uuid4()
    futures = calls.submit([schedule(task, n) for n in range(6)])
    refused = [f for f in futures if f.done() and not f.result()]
    assert refused, "a full lane took every call"
    jobs.release.set()
    calls.close()


def test_a_failed_call_or_recording_says_not_armed() -> None:
    class DownJobs:
        def schedule(self, name: str, due_at: datetime, data: bytes) -> None:
            raise ConnectionError("sidecar down")

        def delete(self, name: str) -> None:
            raise ConnectionError("sidecar down")

    calls = JobCalls(DownJobs(), lambda armed: None, lanes=2, capacity=10)
    assert calls.run([schedule(uuid.uuid4(), 0)], timeout=10) == 0

    def broken_record(armed: list[ScheduleJob]) -> None:
        raise RuntimeError("database down")

    recorded_nothing = JobCalls(SlowJobs(), broken_record, lanes=1, capacity=10)
    recorded_nothing._jobs.release.set()  # type: ignore[attr-defined]
    assert recorded_nothing.run([schedule(uuid.uuid4(), 0)], timeout=10) == 0
    calls.close()
    recorded_nothing.close()
