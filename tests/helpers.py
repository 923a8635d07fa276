"""Helpers shared by every test tier: dev tokens for test users."""

from __future__ import annotations

from todos.settings import DEV_JWT_SECRET, Settings


def token_for(user: str, **kwargs: object) -> str:
    from api.auth import issue_token

    return issue_token(user, Settings(env="dev", jwt_secret=DEV_JWT_SECRET), **kwargs)  # type: ignore[arg-type]


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user)}"}
