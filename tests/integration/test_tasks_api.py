"""The tasks REST API against the real stack: CRUD, paging, isolation,
authentication and problem JSON for bad input."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.helpers import auth, token_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def create(client: httpx.Client, user: str, **body: object) -> dict[str, object]:
    response = client.post("/v1/tasks", json={"title": "Buy milk", **body}, headers=auth(user))
    assert response.status_code == 201, response.text
    return response.json()


def test_crud_round_trip(client: httpx.Client) -> None:
    user = new_user()
    created = create(
        client,
        user,
        description="2 litres",
        priority="high",
        tags=["shopping", "home"],
        due_at="2026-12-01T09:00:00-05:00",
        reminders=[{"before": "PT15M"}, {"at": "2026-12-01T13:00:00Z"}],
    )
    assert created["user_id"] == user
    assert created["status"] == "pending"
    assert created["due_at"] == "2026-12-01T14:00:00Z"  # stored and shown in UTC
    assert created["reminders"] == [
        {"before": "PT15M", "at": None},
        {"before": None, "at": "2026-12-01T13:00:00Z"},
    ]
    assert created["recurrence"] is None and created["series_id"] is None
    task_id = created["id"]

    fetched = client.get(f"/v1/tasks/{task_id}", headers=auth(user)).json()
    assert fetched == created

    updated = client.patch(
        f"/v1/tasks/{task_id}", json={"title": "Buy oat milk", "description": None}, headers=auth(user)
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["title"] == "Buy oat milk"
    assert updated.json()["description"] is None
    assert updated.json()["priority"] == "high"  # untouched fields stay

    done = client.post(f"/v1/tasks/{task_id}/complete", headers=auth(user))
    assert done.status_code == 200
    assert done.json()["status"] == "completed"
    completed_at = done.json()["completed_at"]
    assert completed_at.endswith("Z")
    again = client.post(f"/v1/tasks/{task_id}/complete", headers=auth(user))
    assert again.json()["completed_at"] == completed_at  # idempotent

    assert client.delete(f"/v1/tasks/{task_id}", headers=auth(user)).status_code == 204
    gone = client.get(f"/v1/tasks/{task_id}", headers=auth(user))
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"


def test_list_filters_and_cursor_paging(client: httpx.Client) -> None:
    user = new_user()
    ids = [
        create(
            client,
            user,
            title=f"task {i}",
            tags=["even" if i % 2 == 0 else "odd"],
            due_at=f"2026-12-0{i + 1}T10:00:00Z",
        )["id"]
        for i in range(5)
    ]
    client.post(f"/v1/tasks/{ids[0]}/complete", headers=auth(user))

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/tasks", params=params, headers=auth(user)).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids  # every task once, in creation order

    def listed(**params: object) -> list[str]:
        response = client.get("/v1/tasks", params=params, headers=auth(user))
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json()["items"]]

    assert listed(status="completed") == [ids[0]]
    assert listed(status="pending") == ids[1:]
    assert listed(tag="even") == [ids[0], ids[2], ids[4]]
    assert listed(due_after="2026-12-02T10:00:00Z", due_before="2026-12-05T10:00:00Z") == [ids[2], ids[3]]


def test_every_route_is_private_to_its_owner(client: httpx.Client) -> None:
    alice, bob = new_user(), new_user()
    task_id = create(client, alice)["id"]
    for method, path, body in [
        ("GET", f"/v1/tasks/{task_id}", None),
        ("PATCH", f"/v1/tasks/{task_id}", {"title": "mine now"}),
        ("POST", f"/v1/tasks/{task_id}/complete", None),
        ("DELETE", f"/v1/tasks/{task_id}", None),
    ]:
        response = client.request(method, path, json=body, headers=auth(bob))
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["status"] == 404
    assert client.get("/v1/tasks", headers=auth(bob)).json()["items"] == []
    still = client.get(f"/v1/tasks/{task_id}", headers=auth(alice)).json()
    assert still["title"] == "Buy milk" and still["status"] == "pending"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
    ],
    ids=["no-token", "garbage-token", "wrong-scheme"],
)
def test_requests_without_a_valid_token_get_401(client: httpx.Client, headers: dict[str, str]) -> None:
    for method, path in [("GET", "/v1/tasks"), ("POST", "/v1/tasks"), ("GET", f"/v1/tasks/{uuid.uuid4()}")]:
        response = client.request(method, path, json={"title": "x"}, headers=headers)
        assert response.status_code == 401, (method, path)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"
        assert "Bearer" in response.json()["detail"] or "token" in response.json()["detail"]


def test_token_signed_with_another_secret_or_expired_is_refused(client: httpx.Client) -> None:
    import jwt

    forged = jwt.encode({"sub": "mallory", "exp": 4102444800}, "x" * 40, algorithm="HS256")
    response = client.get("/v1/tasks", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    expired = token_for("alice", ttl_seconds=-10)
    response = client.get("/v1/tasks", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"title": ""}, "title", "at least 1 character"),
        ({"title": "x" * 201}, "title", "at most 200 characters"),
        ({"title": "ok", "due_at": "tomorrow"}, "due_at", "RFC 3339"),
        ({"title": "ok", "due_at": "2026-12-01T09:00:00"}, "due_at", "UTC offset"),
        ({"title": "ok", "priority": "urgent"}, "priority", "low"),
        ({"title": "ok", "reminders": [{"before": "soon"}]}, "reminders.0.before", "ISO 8601 duration"),
        ({"title": "ok", "reminders": [{}]}, "reminders.0", "exactly one"),
        ({}, "title", "required"),
    ],
    ids=[
        "empty-title",
        "long-title",
        "bad-rfc3339",
        "naive-time",
        "unknown-priority",
        "bad-duration",
        "empty-reminder",
        "missing-title",
    ],
)
def test_bad_bodies_get_422_naming_the_field(
    client: httpx.Client, body: dict[str, object], field: str, words: str
) -> None:
    response = client.post("/v1/tasks", json=body, headers=auth(new_user()))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert field in [e["field"] for e in problem["errors"]]
    assert field in problem["detail"] and words in problem["detail"]


def test_malformed_json_and_bad_query_are_4xx_not_500(client: httpx.Client) -> None:
    user = new_user()
    response = client.post(
        "/v1/tasks", content=b"{not json", headers={**auth(user), "content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "JSON" in response.json()["detail"]
    assert client.get("/v1/tasks", params={"limit": 0}, headers=auth(user)).status_code == 422
    assert client.get("/v1/tasks", params={"status": "done"}, headers=auth(user)).status_code == 422
    assert client.get("/v1/tasks", params={"cursor": "abc"}, headers=auth(user)).status_code == 422
    assert client.get("/v1/tasks/not-a-uuid", headers=auth(user)).status_code == 422
    assert client.patch(f"/v1/tasks/{uuid.uuid4()}", json={}, headers=auth(user)).status_code in (404, 422)


def test_ops_endpoints(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    client.get("/v1/tasks", headers=auth(new_user()))
    metrics = client.get("/metrics").text
    assert 'todo_http_requests_total{method="GET",route="/v1/tasks",status="200"}' in metrics
    assert "todo_http_request_seconds_bucket" in metrics
    openapi = client.get("/openapi.json").json()
    assert {"/v1/tasks", "/v1/tasks/{task_id}", "/v1/tasks/{task_id}/complete"} <= set(openapi["paths"])
    assert client.get("/docs").status_code == 200
