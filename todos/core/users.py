"""Who is asking, and the rule every read and change follows: a user reaches
only their own rows; another user's row looks exactly like a missing one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TypeVar

from sqlmodel import Session, SQLModel, select

from todos.core.errors import NotFound


@dataclass(frozen=True)
class User:
    id: str
    email: str | None = None
    # IANA zone from the token's `zoneinfo` claim: how reminder emails show times.
    timezone: str | None = None


_Owned = TypeVar("_Owned", bound=SQLModel)


def owned(
    session: Session, model: type[_Owned], user: User, row_id: uuid.UUID, *, lock: bool = False
) -> _Owned:
    """The user's row of `model` with this id (locked FOR UPDATE if asked), else NotFound."""
    statement = select(model).where(model.id == row_id, model.user_id == user.id)  # type: ignore[attr-defined]
    if lock:
        statement = statement.with_for_update()
    row = session.exec(statement).first()
    if row is None:
        raise not_found(model, row_id)
    return row


def not_found(model: type[SQLModel], row_id: uuid.UUID) -> NotFound:
    """What a missing row, or another user's, answers."""
    noun = model.__name__.lower()
    return NotFound(f"No {noun} {row_id} exists for this user.", field=f"{noun}_id")
