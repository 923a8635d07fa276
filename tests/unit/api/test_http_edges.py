"""The API role's edges, through the real app (TestClient, no database: every
request here is answered before a route would open a session)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastapi.testclient import TestClient

from api import auth
from api.app import create_app
from todos.core.settings import Settings

pytestmark = pytest.mark.unit

SETTINGS = Settings(env="dev")


@contextmanager
def serving(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, background=False)
    # A loopback Host: the MCP endpoint answers 421 to others (DNS-rebinding protection).
    with TestClient(app, base_url="http://localhost", raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with serving(monkeypatch, SETTINGS) as client:
        yield client


def bearer(user: str = "alice", **claims: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.issue_token(user, SETTINGS, **claims)}"}


@pytest.mark.parametrize("title", ["bell\x07", "escape\x1b[31m", "form\x0cfeed", "next\x85line"])
def test_a_title_with_control_characters_is_refused_naming_the_title(client: TestClient, title: str) -> None:
    for response in (
        client.post("/v1/tasks", json={"title": title}, headers=bearer()),
        client.patch(f"/v1/tasks/{uuid.uuid4()}", json={"title": title}, headers=bearer()),
    ):
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        (error,) = response.json()["errors"]
        assert error["field"] == "title" and "control characters" in error["message"]


@pytest.mark.parametrize(
    ("user", "claims", "detail"),
    [
        ("u" * 256, {}, "`sub` is 256 characters long"),
        ("alice\x00", {}, "`sub` holds control characters"),
        ("alice", {"email": "alice@example.com\r\nBcc: mallory@example.com"}, "`email` claim holds"),
        ("alice", {"email": "a" * 243 + "@example.com"}, "`email` claim is 255 bytes long"),
        ("alice", {"email": "\udc80@example.com"}, "`email` claim holds"),
    ],
)
def test_claims_the_tables_or_smtp_cannot_hold_are_refused_at_authentication(
    client: TestClient, user: str, claims: dict[str, str], detail: str
) -> None:
    # A long `sub` failed every write with a 500 (the user_id indexes), on every request.
    response = client.post("/v1/tasks", json={"title": "x"}, headers=bearer(user, **claims))
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "UNAUTHORIZED" and detail in response.json()["detail"]


def test_claims_at_the_limits_are_accepted() -> None:
    user = auth.user_from_authorization(
        bearer("u" * 255, email="a" * 242 + "@example.com")["Authorization"], SETTINGS
    )
    assert len(user.id) == 255 and user.email is not None and len(user.email) == 254


@pytest.mark.parametrize("token", [b"wrong", "tökén".encode(), b"\xff\xfe"])
def test_a_wrong_app_api_token_is_401_whatever_its_bytes(client: TestClient, token: bytes) -> None:
    # hmac.compare_digest raises on a non-ASCII str: that was a 500.
    response = client.post("/job/reminder-x", content=b"{}", headers={"dapr-api-token": token})
    assert response.status_code == 401 and response.json()["code"] == "UNAUTHORIZED"


def test_the_right_app_api_token_reaches_the_job_callback(client: TestClient) -> None:
    assert SETTINGS.app_api_token is not None
    token = SETTINGS.app_api_token.get_secret_value()
    response = client.post("/job/nightly-cleanup", content=b"{}", headers={"dapr-api-token": token})
    assert response.status_code == 404 and "reminder jobs are named" in response.json()["detail"]


PREVIEW = {"rule": "daily", "dtstart": "2026-12-01T09:00:00", "timezone": "UTC", "limit": 1}
LIMIT = 1000


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with serving(monkeypatch, Settings(env="dev", max_request_body_bytes=LIMIT)) as client:
        yield client


def chunks(body: bytes, size: int = 100) -> Iterator[bytes]:
    """A body sent chunked, without Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def padded(value: dict[str, object], size: int) -> bytes:
    body = json.dumps({**value, "padding": ""}).encode()
    return body.replace(b'"padding": ""', b'"padding": "' + b"x" * (size - len(body)) + b'"')


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "BODY_TOO_LARGE" and problem["errors"][0]["field"] == "body"
    assert f"{LIMIT} bytes" in problem["detail"]


def test_a_body_over_the_limit_is_413_whether_declared_or_streamed(small: TestClient) -> None:
    headers = {"content-type": "application/json"}
    body = padded(PREVIEW, LIMIT + 1)
    assert_too_large(small.post("/v1/recurrence/preview", content=body, headers=headers))
    assert_too_large(small.post("/v1/recurrence/preview", content=chunks(body), headers=headers))
    # Before any authentication: FastAPI would have read and parsed it first.
    assert_too_large(small.post("/v1/tasks", content=chunks(padded({"title": "x"}, 10 * LIMIT))))
    assert_too_large(small.post("/mcp", content=chunks(body), headers={**headers, **bearer()}))


def test_a_body_at_the_limit_gets_through_streamed_or_not(small: TestClient) -> None:
    headers = {"content-type": "application/json"}
    body = padded(PREVIEW, LIMIT)
    for content in (body, chunks(body)):
        response = small.post("/v1/recurrence/preview", content=content, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["occurrences"] == ["2026-12-01T09:00:00Z"]


def test_mcp_and_the_job_callback_work_under_the_limit(small: TestClient) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    }
    response = small.post(
        "/mcp",
        content=chunks(json.dumps(initialize).encode()),
        headers={
            **bearer(),
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["result"]["serverInfo"]["name"] == "todo-workflows"
    assert SETTINGS.app_api_token is not None
    token = SETTINGS.app_api_token.get_secret_value()
    fired = small.post("/job/nightly-cleanup", content=b"{}", headers={"dapr-api-token": token})
    assert fired.status_code == 404 and "reminder jobs are named" in fired.json()["detail"]
