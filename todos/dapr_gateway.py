"""The service layer's view of the Dapr workflow engine, behind a small
protocol so the rules in todos.service do not depend on gRPC details."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from dapr.ext.workflow.logger import LoggerOptions

from todos.orchestration import WORKFLOW_NAME, SeriesState, instance_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkflowInfo:
    instance_id: str
    name: str
    runtime_status: str
    created_at: datetime | None
    last_updated_at: datetime | None
    serialized_input: str | None
    serialized_output: str | None
    serialized_custom_status: str | None
    failure_details: dict[str, Any] | None


def sdk_logger_options() -> LoggerOptions:
    """The SDK adds a stream handler of its own to its loggers, which would
    print every line twice; the root logger's handler is enough."""
    return LoggerOptions(log_handler=logging.NullHandler())


class WorkflowGateway(Protocol):
    def start_series(self, state: SeriesState) -> None: ...

    def notify(self, series_id: str, event: str, data: dict[str, Any] | None = None) -> None: ...

    def describe(self, instance: str) -> WorkflowInfo | None: ...


_TERMINAL = {"COMPLETED", "FAILED", "TERMINATED"}
OperatorAction = Literal["pause", "resume", "terminate", "purge"]


def _utc(value: datetime | None) -> datetime | None:
    """The SDK turns protobuf timestamps into naive UTC datetimes."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class DaprWorkflowGateway:
    """DaprWorkflowClient, created on first use (the sidecar may start later).
    Without host and port it uses the SDK's defaults ($DAPR_GRPC_PORT)."""

    def __init__(self, host: str | None = None, port: int | None = None) -> None:
        self._client: Any = None
        self._lock = threading.Lock()
        self._host = host
        self._port = str(port) if port is not None else None

    def _workflows(self) -> Any:
        with self._lock:
            if self._client is None:
                from dapr.ext.workflow import DaprWorkflowClient

                self._client = DaprWorkflowClient(
                    host=self._host, port=self._port, logger_options=sdk_logger_options()
                )
            return self._client

    def start_series(self, state: SeriesState) -> None:
        """Idempotent: the instance id is derived from the series, so a second
        start of a running series is a no-op."""
        instance = instance_id(state.series_id)
        client = self._workflows()
        existing = client.get_workflow_state(instance, fetch_payloads=False)
        if existing is not None and existing.runtime_status.name not in _TERMINAL:
            return
        try:
            client.schedule_new_workflow(WORKFLOW_NAME, input=state, instance_id=instance)
        except Exception as error:
            if "already exists" in str(error).lower():
                return
            raise

    def notify(self, series_id: str, event: str, data: dict[str, Any] | None = None) -> None:
        self._workflows().raise_workflow_event(instance_id(series_id), event, data=data or {})

    def describe(self, instance: str) -> WorkflowInfo | None:
        state = self._workflows().get_workflow_state(instance, fetch_payloads=True)
        if state is None:
            return None
        failure = state.failure_details
        return WorkflowInfo(
            instance_id=state.instance_id,
            name=state.name,
            runtime_status=state.runtime_status.name,
            created_at=_utc(state.created_at),
            last_updated_at=_utc(state.last_updated_at),
            serialized_input=state.serialized_input,
            serialized_output=state.serialized_output,
            serialized_custom_status=state.serialized_custom_status,
            failure_details=(
                {
                    "message": failure.message,
                    "error_type": failure.error_type,
                    "stack_trace": failure.stack_trace,
                }
                if failure is not None
                else None
            ),
        )

    def operate(self, instance: str, action: OperatorAction) -> None:
        """What an operator may do to any instance (`./task wf`); the service
        layer never calls this."""
        client = self._workflows()
        if action == "pause":
            client.pause_workflow(instance)
        elif action == "resume":
            client.resume_workflow(instance)
        elif action == "terminate":
            client.terminate_workflow(instance)
        else:
            client.purge_workflow(instance)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
