"""The API role's edges, through the real app (TestClient, no database: every
request here is answered before a route would open a session)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api import auth
from api.app import create_app
from todos.settings import Settings

pytestmark = pytest.mark.unit

SETTINGS = Settings(env="dev")


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    # Authentication reads the process's settings; give it the app's.
    monkeypatch.setattr(auth, "get_settings", lambda: SETTINGS)
    with TestClient(create_app(SETTINGS, background=False), raise_server_exceptions=False) as client:
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
