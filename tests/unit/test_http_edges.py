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
