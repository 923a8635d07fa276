"""POST /v1/recurrence/preview needs no token, so it is bounded twice: each request's expansion work (a 422
past the budget, whatever the rule) and how often each client may ask (429 with Retry-After)."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import problems
from api.app import create_app
from api.auth import issue_token
from api.ratelimit import RateLimiter
from api.routes import series
from bench.recurrence import PATHOLOGICAL as BENCH_PATHOLOGICAL
from todos.core.settings import Settings
from todos.series import recurrence
from todos.series.service import Preview

pytestmark = pytest.mark.unit

SETTINGS = Settings(env="dev")
BODY = {"rule": "weekdays", "dtstart": "2026-12-01T09:00:00", "timezone": "America/New_York", "limit": 5}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class FakeService:
    def __init__(self) -> None:
        self.calls = 0

    def preview(self, rule: str, dtstart: datetime, timezone: str, limit: int) -> Preview:
        self.calls += 1
        return Preview(occurrences=["2026-12-01T14:00:00Z"], text="every weekday at 09:00 (America/New_York)")


def preview_app(limiter: RateLimiter) -> tuple[FastAPI, FakeService]:
    app = FastAPI()
    problems.install(app)
    app.include_router(series.router)
    service = FakeService()
    app.state.services = SimpleNamespace(series=service)
    app.state.settings = SETTINGS
    app.state.preview_limiter = limiter
    return app, service


def bearer(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(user, SETTINGS)}"}


def test_a_client_gets_its_burst_then_429_with_retry_after() -> None:
    app, service = preview_app(RateLimiter(per_minute=6, burst=3, clock=Clock()))
    client = TestClient(app)

    assert [client.post("/v1/recurrence/preview", json=BODY).status_code for _ in range(3)] == [200] * 3
    refused = client.post("/v1/recurrence/preview", json=BODY)

    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "10"  # 6 a minute: one every 10 s
    problem = refused.json()
    assert (problem["status"], problem["code"], problem["title"]) == (
        429,
        "RATE_LIMITED",
        "Too many requests",
    )
    assert problem["detail"] == (
        "Too many previews from this client; retry in 10 s (each client may preview 3 rules at once, "
        "then 6 a minute)."
    )
    assert service.calls == 3


def test_the_bucket_refills_at_the_rate_and_retry_after_counts_down() -> None:
    clock = Clock()
    app, _ = preview_app(RateLimiter(per_minute=6, burst=2, clock=clock))
    client = TestClient(app)
    for _ in range(2):
        client.post("/v1/recurrence/preview", json=BODY)

    clock.now += 4
    assert client.post("/v1/recurrence/preview", json=BODY).headers["retry-after"] == "6"
    clock.now += 6
    assert client.post("/v1/recurrence/preview", json=BODY).status_code == 200
    assert client.post("/v1/recurrence/preview", json=BODY).status_code == 429
    clock.now += 3600  # a long pause refills the burst, no more
    assert [client.post("/v1/recurrence/preview", json=BODY).status_code for _ in range(3)] == [200, 200, 429]


def test_clients_are_the_tokens_sub_else_the_address() -> None:
    app, _ = preview_app(RateLimiter(per_minute=1, burst=1, clock=Clock()))
    here, there = TestClient(app, client=("10.0.0.1", 5000)), TestClient(app, client=("10.0.0.2", 5000))

    assert here.post("/v1/recurrence/preview", json=BODY, headers=bearer("alice")).status_code == 200
    # Alice from another address is still Alice; Bob and the anonymous address are clients of their own.
    assert there.post("/v1/recurrence/preview", json=BODY, headers=bearer("alice")).status_code == 429
    assert here.post("/v1/recurrence/preview", json=BODY, headers=bearer("bob")).status_code == 200
    assert here.post("/v1/recurrence/preview", json=BODY).status_code == 200
    # An invalid token needs no 401 on this route: it is the address, whose request is used up.
    forged = {"Authorization": "Bearer not-a-jwt"}
    assert here.post("/v1/recurrence/preview", json=BODY, headers=forged).status_code == 429
    assert there.post("/v1/recurrence/preview", json=BODY, headers=forged).status_code == 200


def test_invalid_requests_count_too() -> None:
    app, service = preview_app(RateLimiter(per_minute=1, burst=1, clock=Clock()))
    client = TestClient(app)

    assert client.post("/v1/recurrence/preview", json={**BODY, "limit": 1000}).status_code == 422
    assert client.post("/v1/recurrence/preview", json={**BODY, "limit": 1000}).status_code == 429
    assert service.calls == 0


def test_the_limiter_remembers_a_bounded_number_of_clients() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=1, burst=1, max_clients=2, clock=clock)
    assert [limiter.acquire(client) for client in ("a", "b", "a")] == [0, 0, 60]

    assert limiter.acquire("c") == 0  # forgets "b", seen longest ago
    assert len(limiter) == 2
    assert limiter.acquire("a") == 60
    assert limiter.acquire("b") == 0  # a fresh burst: the price of bounded memory


def test_the_limit_comes_from_the_settings_and_is_documented() -> None:
    app = create_app(
        Settings(env="dev", preview_rate_per_minute=30, preview_burst=5, preview_rate_clients=7),
        background=False,
    )
    limiter: RateLimiter = app.state.preview_limiter
    assert (limiter.per_minute, limiter.burst, limiter.max_clients) == (30, 5, 7)

    responses = app.openapi()["paths"]["/v1/recurrence/preview"]["post"]["responses"]
    assert responses["429"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}
    assert responses["429"]["content"]["application/problem+json"]["example"]["code"] == "RATE_LIMITED"
    assert "RULE_TOO_SPARSE" in responses["422"]["description"]


# The rules the issue named and their like, as bench/recurrence.py measures them.
PATHOLOGICAL = list(BENCH_PATHOLOGICAL)


@pytest.fixture(scope="module")
def real_app() -> FastAPI:
    return create_app(SETTINGS, background=False)


@pytest.mark.parametrize("rule", PATHOLOGICAL)
@pytest.mark.parametrize("limit", [10, 100])
def test_pathological_rules_answer_200_or_422_within_the_budget(
    real_app: FastAPI, monkeypatch: pytest.MonkeyPatch, rule: str, limit: int
) -> None:
    budgets: list[recurrence.Budget] = []

    class Recorded(recurrence.Budget):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            budgets.append(self)

    monkeypatch.setattr(recurrence, "Budget", Recorded)
    real_app.state.preview_limiter = RateLimiter(per_minute=60, burst=10)

    answer = TestClient(real_app).post("/v1/recurrence/preview", json={**BODY, "rule": rule, "limit": limit})

    assert answer.status_code in (200, 422), answer.text
    if answer.status_code == 422:
        problem = answer.json()
        assert problem["code"] in ("RULE_TOO_SPARSE", "RULE_YIELDS_NOTHING")
        assert problem["errors"][0]["field"] == "rule"
    else:
        assert len(answer.json()["occurrences"]) == limit
    (budget,) = budgets
    assert 0 < budget.spent <= budget.units
