"""The database: one engine per process, made by the composition root and
passed to whoever needs it, and the transaction scope every change runs in
(synchronous SQLAlchemy over psycopg 3).

Sync on purpose: the same services run inside FastAPI's threadpool and
inside Dapr workflow activities, which the SDK runs on worker threads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from todos.core.metrics import DB_STATEMENTS, DB_TRANSACTIONS
from todos.core.settings import Settings


class Database:
    def __init__(self, settings: Settings) -> None:
        self.engine = create_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_pre_ping=True,
            pool_recycle=1800,
            # Every timestamp leaves PostgreSQL as UTC, whatever the server's zone.
            connect_args={"options": "-c timezone=UTC", "connect_timeout": 5},
        )
        self.url = settings.database_url
        count_round_trips(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any error."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def ping(self) -> None:
        """Raises unless PostgreSQL answers (readiness)."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def count_round_trips(engine: Engine) -> None:
    """Statements and transactions sent to PostgreSQL, counted per process: the
    round trips a series step or a request costs, read as rate ratios beside
    the step counters (bench/ divides them by the steps it drove)."""

    def statement(*_: Any) -> None:
        DB_STATEMENTS.inc()

    def committed(_: Any) -> None:
        DB_TRANSACTIONS.labels("commit").inc()

    def rolled_back(_: Any) -> None:
        DB_TRANSACTIONS.labels("rollback").inc()

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", committed)
    event.listen(engine, "rollback", rolled_back)
