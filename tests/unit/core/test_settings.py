"""Settings refuse development secrets outside dev."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from todos.core.settings import DEV_APP_API_TOKEN, DEV_JWT_SECRET, Settings

pytestmark = pytest.mark.unit

REAL_SECRET = "s" * 40
REAL_TOKEN = "t" * 40


def test_dev_mode_accepts_the_development_defaults() -> None:
    settings = Settings(env="dev")
    assert settings.jwt_secret is not None
    assert settings.jwt_secret.get_secret_value() == DEV_JWT_SECRET


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "TODO_JWT_SECRET"),
        ({"jwt_secret": DEV_JWT_SECRET, "app_api_token": REAL_TOKEN}, "TODO_JWT_SECRET"),
        ({"jwt_secret": "short", "app_api_token": REAL_TOKEN}, "at least 32"),
        ({"jwt_secret": REAL_SECRET}, "TODO_APP_API_TOKEN"),
        ({"jwt_secret": REAL_SECRET, "app_api_token": DEV_APP_API_TOKEN}, "TODO_APP_API_TOKEN"),
    ],
)
def test_production_refuses_default_or_weak_secrets(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(env="production", **overrides)  # type: ignore[arg-type]


def test_production_accepts_real_secrets_or_a_jwks_url() -> None:
    assert Settings(env="production", jwt_secret=REAL_SECRET, app_api_token=REAL_TOKEN)  # type: ignore[arg-type]
    jwks = Settings(env="production", **JWKS)  # type: ignore[arg-type]
    assert jwks.jwks_url


JWKS = {
    "jwt_secret": None,
    "jwks_url": "https://auth.example.com/api/auth/jwks",
    "jwt_audience": "todo-api",
    "jwt_issuer": "https://auth.example.com",
    "app_api_token": REAL_TOKEN,
}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"jwks_url": "http://auth.example.com/api/auth/jwks"}, "TODO_JWKS_URL must be an https:// URL"),
        ({"jwt_audience": None}, "TODO_JWT_AUDIENCE is required with TODO_JWKS_URL"),
        ({"jwt_audience": ""}, "TODO_JWT_AUDIENCE is required with TODO_JWKS_URL"),
        ({"jwt_issuer": None}, "TODO_JWT_ISSUER is required with TODO_JWKS_URL"),
    ],
)
def test_production_jwks_needs_https_an_audience_and_an_issuer(
    overrides: dict[str, str | None], message: str
) -> None:
    # Any token the provider signs, for any app of its tenants, would do otherwise;
    # and keys fetched over plain HTTP can be swapped on the way.
    with pytest.raises(ValidationError, match=message):
        Settings(env="production", **{**JWKS, **overrides})  # type: ignore[arg-type]
    assert Settings(env="dev", **{**JWKS, **overrides})  # type: ignore[arg-type]


def test_libpq_urls_get_the_psycopg_driver() -> None:
    settings = Settings(env="dev", database_url="postgres://u:p@db:5432/todo")
    assert settings.database_url == "postgresql+psycopg://u:p@db:5432/todo"


def test_mcp_hosts_default_to_loopback_and_read_lists_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert "127.0.0.1:*" in Settings(env="dev").mcp_allowed_hosts
    monkeypatch.setenv("TODO_MCP_ALLOWED_HOSTS", "todo-api, todo-api:*,")
    monkeypatch.setenv("TODO_MCP_ALLOWED_ORIGINS", '["https://chat.example.com"]')
    settings = Settings(env="dev")
    assert settings.mcp_allowed_hosts == ["todo-api", "todo-api:*"]
    assert settings.mcp_allowed_origins == ["https://chat.example.com"]


def test_reminder_settings_are_checked_when_the_app_starts() -> None:
    with pytest.raises(ValidationError, match="TODO_REMINDER_TIMEZONE"):
        Settings(env="dev", reminder_timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="TODO_SMTP_MAX_ATTEMPTS"):
        Settings(env="dev", smtp_max_attempts=0)
    assert Settings(env="dev", reminder_timezone="Asia/Tokyo").reminder_timezone == "Asia/Tokyo"


@pytest.mark.parametrize(("value", "shape"), [("1", 1), ("2", 2)])
def test_the_step_shape_reads_from_the_environment_as_the_chart_sets_it(
    monkeypatch: pytest.MonkeyPatch, value: str, shape: int
) -> None:
    monkeypatch.setenv("TODO_SERIES_STEP_SHAPE", value)
    assert Settings(env="dev").series_step_shape == shape


@pytest.mark.parametrize("value", ["0", "3", "fast"])
def test_a_step_shape_other_than_1_or_2_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TODO_SERIES_STEP_SHAPE", value)
    with pytest.raises(ValidationError, match="series_step_shape"):
        Settings(env="dev")
