"""The service layer's view of the Dapr workflow engine and Jobs API, behind
small protocols so the services do not depend on gRPC details."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from dapr.ext.workflow.logger import LoggerOptions

from todos.core.fields import rfc3339
from todos.core.settings import Settings
from todos.series.contract import WORKFLOW_NAME, SeriesState, instance_id

log = logging.getLogger(__name__)


# Runtime statuses after which an instance runs no more (until purged or recreated).
ENDED_STATUSES = ("COMPLETED", "FAILED", "TERMINATED")


@dataclass(frozen=True)
class WorkflowFailure:
    """Why an instance failed, as Dapr keeps it. The stack trace names the
    app's files and lines: it is for operators (`./task wf -- status`, and
    the worker's log line), not for the inspect API."""

    error_type: str
    message: str
    stack_trace: str | None


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
    failure_details: WorkflowFailure | None


def sdk_logger_options() -> LoggerOptions:
    """The SDK adds a stream handler of its own to its loggers, which would
    print every line twice; the root logger's handler is enough."""
    return LoggerOptions(log_handler=logging.NullHandler())


class WorkflowGateway(Protocol):
    def start_series(self, state: SeriesState) -> None: ...

    def notify(self, series_id: str, event: str, data: dict[str, Any] | None = None) -> None: ...

    def describe(self, instance: str) -> WorkflowInfo | None: ...

    def runtime_status(self, instance: str) -> str | None:
        """RUNNING, FAILED, …, or None when the engine has no such instance."""
        ...

    def terminate(self, instance: str) -> None:
        """Ask the engine to end the instance (TERMINATED once it has run the request)."""
        ...


OperatorAction = Literal["pause", "resume", "terminate", "purge"]


def _utc(value: datetime | None) -> datetime | None:
    """The SDK turns protobuf timestamps into naive UTC datetimes."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def bound_sidecar_calls(settings: Settings) -> None:
    """Give every unary gRPC call the Dapr SDK makes to the sidecar a deadline
    (the SDK's own interceptor applies it), unless DAPR_API_TIMEOUT_SECONDS
    already set one."""
    from dapr.conf import settings as dapr_settings

    if not os.environ.get("DAPR_API_TIMEOUT_SECONDS"):
        # The SDK's settings object declares its names only for reading.
        setattr(dapr_settings, "DAPR_API_TIMEOUT_SECONDS", settings.dapr_call_timeout_seconds)  # noqa: B010


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
        """Idempotent: the instance id is derived from the series, and daprd
        itself refuses to create an instance whose id is still active
        (AlreadyExists) and recreates a finished one, in one actor turn. So no
        status read first: that extra round trip through the sidecar and the
        state store was part of every series creation (bench/scale.py)."""
        try:
            self._workflows().schedule_new_workflow(
                WORKFLOW_NAME, input=state, instance_id=instance_id(state.series_id)
            )
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
                WorkflowFailure(
                    error_type=failure.error_type, message=failure.message, stack_trace=failure.stack_trace
                )
                if failure is not None
                else None
            ),
        )

    def runtime_status(self, instance: str) -> str | None:
        state = self._workflows().get_workflow_state(instance, fetch_payloads=False)
        return None if state is None else str(state.runtime_status.name)

    def terminate(self, instance: str) -> None:
        self._workflows().terminate_workflow(instance)

    def operate(self, instance: str, action: OperatorAction) -> None:
        """What an operator may do to any instance (`./task wf`); the service
        layer never calls this."""
        client = self._workflows()
        if action == "pause":
            client.pause_workflow(instance)
        elif action == "resume":
            client.resume_workflow(instance)
        elif action == "terminate":
            self.terminate(instance)
        else:
            client.purge_workflow(instance)

    def history(self, instance: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The recorded history of the instance's current generation, each event
        as protobuf's JSON mapping (what `./task wf -- export-history` writes
        and tests/unit/workflows/test_recorded_histories.py replays). The SDK
        has no call for it; the sidecar serves it on the same gRPC service."""
        import grpc
        from dapr.conf import settings as dapr_settings
        from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2 as pb
        from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2_grpc as stubs
        from google.protobuf.json_format import MessageToDict

        target = (
            f"{self._host or dapr_settings.DAPR_RUNTIME_HOST}:{self._port or dapr_settings.DAPR_GRPC_PORT}"
        )
        token = os.environ.get("DAPR_API_TOKEN")
        with grpc.insecure_channel(target) as channel:
            response = stubs.TaskHubSidecarServiceStub(channel).GetInstanceHistory(  # type: ignore[no-untyped-call]
                pb.GetInstanceHistoryRequest(instanceId=instance),
                metadata=[("dapr-api-token", token)] if token else None,
                timeout=timeout,
            )
        return [MessageToDict(event) for event in response.events]

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


class JobGateway(Protocol):
    def schedule(self, name: str, due_at: datetime, data: bytes) -> None:
        """Arm the one-shot job `name` for `due_at`, replacing any job of that name."""

    def delete(self, name: str) -> None:
        """Remove the job `name`; a job that is gone already is no error."""


class DaprJobGateway:
    """The Dapr Jobs API through DaprClient (gRPC), created on first use.

    Jobs are one-shot (`due_time` RFC 3339, no schedule) and overwrite an
    older job of the same name. Their JSON data travels as a
    google.protobuf.Value, as the Dapr HTTP API stores it: daprd posts it
    back as JSON to `POST /job/{name}`, and `GET /v1.0/jobs/{name}` can show
    it. A callback that fails is retried by Dapr at a constant interval (the
    job's failure policy).
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Any = None
        self._lock = threading.Lock()

    def _jobs(self) -> Any:
        with self._lock:
            if self._client is None:
                from dapr.clients import DaprClient

                self._client = DaprClient()
            return self._client

    def schedule(self, name: str, due_at: datetime, data: bytes) -> None:
        from dapr.clients.grpc._jobs import ConstantFailurePolicy, Job
        from google.protobuf import json_format
        from google.protobuf.any_pb2 import Any as ProtoAny
        from google.protobuf.struct_pb2 import Value

        packed = ProtoAny()
        packed.Pack(json_format.Parse(data, Value()))
        job = Job(
            name=name,
            due_time=rfc3339(due_at),
            data=packed,
            failure_policy=ConstantFailurePolicy(
                max_retries=self._settings.reminder_job_max_retries,
                interval_seconds=self._settings.reminder_job_retry_seconds,
            ),
        )
        self._jobs().schedule_job(job, overwrite=True)

    def delete(self, name: str) -> None:
        self._jobs().delete_job(name)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
