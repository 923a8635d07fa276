"""A sidecar that stops answering (e.g. while the Dapr scheduler restarts)
fails the call at the deadline instead of holding the HTTP request."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import grpc
import pytest
from dapr.conf import settings as dapr_settings

from todos.core.settings import Settings
from todos.dapr import DaprWorkflowGateway, bound_sidecar_calls

pytestmark = pytest.mark.unit


@pytest.fixture
def silent_sidecar() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_a_silent_sidecar_fails_the_call_at_the_deadline(
    silent_sidecar: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAPR_API_TIMEOUT_SECONDS", raising=False)
    monkeypatch.setattr(dapr_settings, "DAPR_API_TIMEOUT_SECONDS", None)
    bound_sidecar_calls(Settings(env="dev", dapr_call_timeout_seconds=0.5))
    gateway = DaprWorkflowGateway(host="127.0.0.1", port=silent_sidecar)
    try:
        with pytest.raises(grpc.RpcError) as raised:
            gateway.notify("0b6c5f4e-3f5a-4a2b-9c1d-2e7f8a9b0c1d", "task_completed")
    finally:
        gateway.close()
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]


def test_an_explicit_dapr_api_timeout_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAPR_API_TIMEOUT_SECONDS", "42")
    monkeypatch.setattr(dapr_settings, "DAPR_API_TIMEOUT_SECONDS", 42)
    bound_sidecar_calls(Settings(env="dev", dapr_call_timeout_seconds=3))
    assert dapr_settings.DAPR_API_TIMEOUT_SECONDS == 42
