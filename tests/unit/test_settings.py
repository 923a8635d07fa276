"""Settings refuse development secrets outside dev."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from todos.settings import DEV_APP_API_TOKEN, DEV_JWT_SECRET, Settings

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
    jwks = Settings(
        env="production",
        jwt_secret=None,
        jwks_url="https://auth.example.com/api/auth/jwks",
        app_api_token=REAL_TOKEN,  # type: ignore[arg-type]
    )
    assert jwks.jwks_url


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
