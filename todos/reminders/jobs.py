"""Dapr job calls made after a commit, off the caller's thread.

A change that arms ten reminders used to make ten calls one after another,
each with the sidecar deadline (15 s), on the request's thread: during a
scheduler restart one request waited minutes. Here the calls go to a few
lanes (threads), each lane taking the calls of the job names that hash to it
in the order they came, so a job's schedule and its later delete or
re-schedule never overtake each other; different jobs go out concurrently.

A schedule Dapr confirmed is recorded (`record`, a batch per lane round). A
call that fails, or that does not fit in a full lane, is left undone: the row
says "not confirmed" and the sweeper makes the call again. A failed delete
needs no repair: the job's firing finds nothing to send.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

from todos.core.metrics import JOB_CALLS_DEFERRED
from todos.dapr import JobGateway
from todos.reminders import rules as reminders

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScheduleJob:
    reminder_id: uuid.UUID
    fire_at: datetime
    data: reminders.JobData

    @property
    def name(self) -> str:
        return reminders.job_name(self.data.task_id, self.data.n)


@dataclass(frozen=True)
class DeleteJob:
    name: str


JobAction = ScheduleJob | DeleteJob

# Calls a lane makes before it records what Dapr confirmed.
_ROUND = 64


@dataclass(frozen=True)
class _Call:
    action: JobAction
    # True once the job is armed (and recorded) or deleted; False if not.
    done: Future[bool]


class JobCalls:
    def __init__(
        self,
        jobs: JobGateway,
        record: Callable[[list[ScheduleJob]], None],
        *,
        lanes: int,
        capacity: int,
    ) -> None:
        self._jobs = jobs
        self._record = record
        self._queues: list[queue.Queue[_Call | None]] = [queue.Queue(capacity) for _ in range(lanes)]
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, actions: Sequence[JobAction], *, wait: float = 0.0) -> list[Future[bool]]:
        """Queue the calls (waiting up to `wait` for room in a full lane); each
        future says whether its call got through."""
        if actions:
            self._start()
        futures: list[Future[bool]] = []
        for action in actions:
            call = _Call(action, Future())
            lane = self._queues[zlib.crc32(_name(action).encode()) % len(self._queues)]
            try:
                lane.put(call, timeout=wait) if wait > 0 else lane.put_nowait(call)
            except queue.Full:
                JOB_CALLS_DEFERRED.inc()
                log.warning("job call for %s deferred (lanes full); the sweeper makes it", _name(action))
                call.done.set_result(False)
            futures.append(call.done)
        return futures

    def run(self, actions: Sequence[JobAction], timeout: float) -> int:
        """Make the calls and wait for them (up to `timeout`); returns how many got through."""
        futures = self.submit(actions, wait=timeout)
        confirmed = 0
        for done in futures:
            try:
                confirmed += done.result(timeout=timeout)
            except TimeoutError:
                continue
        return confirmed

    def close(self, timeout: float = 5.0) -> None:
        """Stop the lanes after the calls already queued (bounded by `timeout` each)."""
        with self._lock:
            threads, self._threads = self._threads, []
        for lane in self._queues[: len(threads)]:
            try:
                lane.put(None, timeout=timeout)
            except queue.Full:
                continue  # a daemon thread: it ends with the process
        for thread in threads:
            thread.join(timeout)

    def _start(self) -> None:
        with self._lock:
            if self._threads:
                return
            for n, lane in enumerate(self._queues):
                thread = threading.Thread(
                    target=self._serve, args=(lane,), name=f"job-calls-{n}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _serve(self, lane: queue.Queue[_Call | None]) -> None:
        while True:
            first = lane.get()
            if first is None:
                return
            calls = [first]
            while len(calls) < _ROUND:
                try:
                    more = lane.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    lane.put(None)  # stop after this round
                    break
                calls.append(more)
            self._make(calls)

    def _make(self, calls: list[_Call]) -> None:
        confirmed: list[_Call] = []
        for call in calls:
            action = call.action
            try:
                if isinstance(action, ScheduleJob):
                    self._jobs.schedule(action.name, action.fire_at, action.data.to_bytes())
                    confirmed.append(call)
                    continue
                self._jobs.delete(action.name)
                call.done.set_result(True)
            except Exception:
                log.warning("Dapr job call for %s failed; the sweeper retries", action.name, exc_info=True)
                call.done.set_result(False)
        if not confirmed:
            return
        try:
            self._record([call.action for call in confirmed if isinstance(call.action, ScheduleJob)])
        except Exception:
            # Armed in Dapr but not recorded: the sweeper arms it again (an overwrite).
            log.warning("recording %d armed job(s) failed", len(confirmed), exc_info=True)
            for call in confirmed:
                call.done.set_result(False)
            return
        for call in confirmed:
            call.done.set_result(True)


def _name(action: JobAction) -> str:
    return action.name
