"""Background machinery of the api role, run in the app's lifespan: the
Dapr workflow worker (workflows and activities, registered by explicit name),
the recording of started workflows in batches, and the sweeper that repairs
workflow and job calls a crash left undone."""

from __future__ import annotations

import logging
import threading
import time

from dapr.ext.workflow import WorkflowRuntime

from activities import reminders as reminder_activities
from activities import series as series_activities
from todos.dapr_gateway import sdk_logger_options
from todos.metrics import SWEEPER_REPAIRS
from todos.orchestration import (
    CREATE_NEXT_OCCURRENCE,
    FINISH_SERIES,
    LOAD_SERIES_PROGRESS,
    SCHEDULE_TASK_REMINDERS,
    WORKFLOW_NAME,
)
from todos.service import TaskService
from workflows.recurring import recurring_task_workflow

log = logging.getLogger(__name__)

# How often started workflows are recorded: the delay before a new series
# shows `workflow_started_at`, against one statement per batch.
RECORD_STARTED_INTERVAL = 0.25


def build_workflow_runtime() -> WorkflowRuntime:
    runtime = WorkflowRuntime(logger_options=sdk_logger_options())
    runtime.register_workflow(recurring_task_workflow, name=WORKFLOW_NAME)
    runtime.register_activity(series_activities.load_series_progress, name=LOAD_SERIES_PROGRESS)
    runtime.register_activity(series_activities.create_next_occurrence, name=CREATE_NEXT_OCCURRENCE)
    runtime.register_activity(series_activities.finish_series, name=FINISH_SERIES)
    runtime.register_activity(reminder_activities.schedule_task_reminders, name=SCHEDULE_TASK_REMINDERS)
    return runtime


class Background:
    """Starts the worker without blocking startup (in Kubernetes the sidecar
    may come up after the app); records started workflows and runs the
    sweeper until stopped."""

    def __init__(self, service: TaskService, sweep_interval: float) -> None:
        self.service = service
        self.sweep_interval = sweep_interval
        self.runtime = build_workflow_runtime()
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
                repaired = self.service.sweep()
            except Exception:
                log.warning("sweep failed; retrying next round", exc_info=True)
                continue
            for action, count in repaired.items():
                if count:
                    SWEEPER_REPAIRS.labels(action).inc(count)
                    log.info("sweeper %s: %d", action, count)

    def _record_started(self) -> None:
        try:
            self.service.record_started()
        except Exception:
            # Kept for the next attempt; the database is likely down.
            log.debug("recording started workflows failed; retrying", exc_info=True)
