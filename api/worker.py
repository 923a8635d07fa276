"""Background machinery of the api role, run in the app's lifespan: the
Dapr workflow worker (the workflow and its activities, registered by
explicit name, the activities bound to this process's services), the
recording of started workflows in batches, and the sweeper that repairs
workflow and job calls a crash left undone."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from dapr.ext.workflow import WorkflowRuntime

from activities.reminders import ReminderActivities
from activities.series import SeriesActivities
from todos.core.metrics import SWEEPER_REPAIRS
from todos.dapr import sdk_logger_options
from todos.series.contract import (
    CREATE_NEXT_OCCURRENCE,
    FINISH_SERIES,
    LOAD_SERIES_PROGRESS,
    SCHEDULE_TASK_REMINDERS,
    WORKFLOW_NAME,
)
from todos.series.starts import WorkflowStarts
from todos.series.steps import SeriesSteps
from todos.sweeper import Sweeper
from workflows.recurring import recurring_task_workflow

log = logging.getLogger(__name__)

# How often started workflows are recorded: the delay before a new series
# shows `workflow_started_at`, against one statement per batch.
RECORD_STARTED_INTERVAL = 0.25


def _own(method: Callable[..., Any]) -> Callable[..., Any]:
    """A function of its own for one registration. The SDK marks what it
    registers in the function's __dict__, which a bound method shares with
    every instance of its class; the signature (and the input model the SDK
    reads from it) is the method's."""

    @functools.wraps(method)
    def activity(*args: Any) -> Any:
        return method(*args)

    return activity


def build_workflow_runtime(steps: SeriesSteps) -> WorkflowRuntime:
    runtime = WorkflowRuntime(logger_options=sdk_logger_options())
    runtime.register_workflow(recurring_task_workflow, name=WORKFLOW_NAME)
    series = SeriesActivities(steps)
    reminders = ReminderActivities(steps)
    for name, method in (
        (LOAD_SERIES_PROGRESS, series.load_series_progress),
        (CREATE_NEXT_OCCURRENCE, series.create_next_occurrence),
        (FINISH_SERIES, series.finish_series),
        (SCHEDULE_TASK_REMINDERS, reminders.schedule_task_reminders),
    ):
        runtime.register_activity(_own(method), name=name)
    return runtime


class Background:
    """Starts the worker without blocking startup (in Kubernetes the sidecar
    may come up after the app); records started workflows and runs the
    sweeper until stopped."""

    def __init__(
        self, steps: SeriesSteps, starts: WorkflowStarts, sweeper: Sweeper, sweep_interval: float
    ) -> None:
        self.starts = starts
        self.sweeper = sweeper
        self.sweep_interval = sweep_interval
        self.runtime = build_workflow_runtime(steps)
        self.worker_ready = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for target, name in ((self._run_worker, "workflow-worker"), (self._run_upkeep, "upkeep")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        if self.worker_ready.is_set():
            self.runtime.shutdown()  # type: ignore[no-untyped-call]
        for thread in self._threads:
            thread.join(timeout=10)
        self._record_started()

    def _run_worker(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            try:
                self.runtime.start()  # type: ignore[no-untyped-call]
            except Exception:  # noqa: BLE001 - the sidecar is not up yet: retry
                log.warning("workflow worker could not connect to the sidecar; retrying in %.0fs", delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 30)
                continue
            log.info("workflow worker connected")
            self.worker_ready.set()
            return

    def _run_upkeep(self) -> None:
        """Records started workflows every RECORD_STARTED_INTERVAL and sweeps
        every sweep interval, once the worker is connected."""
        next_sweep = time.monotonic() + self.sweep_interval
        while not self._stop.wait(RECORD_STARTED_INTERVAL):
            self._record_started()
            if time.monotonic() < next_sweep or not self.worker_ready.is_set():
                continue
            next_sweep = time.monotonic() + self.sweep_interval
            try:
                repaired = self.sweeper.sweep()
            except Exception:
                log.warning("sweep failed; retrying next round", exc_info=True)
                continue
            for action, count in repaired.items():
                if count:
                    SWEEPER_REPAIRS.labels(action).inc(count)
                    log.info("sweeper %s: %d", action, count)

    def _record_started(self) -> None:
        try:
            self.starts.record_started()
        except Exception:
            # Kept for the next attempt; the database is likely down.
            log.debug("recording started workflows failed; retrying", exc_info=True)
