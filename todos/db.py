"""Database engine and sessions (synchronous SQLAlchemy over psycopg 3).

Sync on purpose: the same service layer runs inside FastAPI's threadpool and
inside Dapr workflow activities, which the SDK runs on worker threads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine
from sqlmodel import Session, create_engine

from todos.settings import get_settings


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    settings = get_settings()
    return create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
        # Every timestamp leaves PostgreSQL as UTC, whatever the server's zone.
        connect_args={"options": "-c timezone=UTC", "connect_timeout": 5},
    )


@contextmanager
def session_scope() -> Iterator[Session]:
    """One transaction: committed on success, rolled back on any error."""
    with Session(get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
