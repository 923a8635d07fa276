"""The round-trip counters the step cost account reads (todo_db_*), on the real database."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from todos.core.db import Database
from todos.core.metrics import DB_STATEMENTS, DB_TRANSACTIONS

pytestmark = [pytest.mark.service, pytest.mark.timeout(120)]


def _counts() -> tuple[float, float, float]:
    return (
        DB_STATEMENTS._value.get(),
        DB_TRANSACTIONS.labels("commit")._value.get(),
        DB_TRANSACTIONS.labels("rollback")._value.get(),
    )


def test_each_statement_and_each_ended_transaction_is_counted(database: Database) -> None:
    before = _counts()
    with database.session() as session:
        session.execute(text("SELECT 1"))
        session.execute(text("SELECT 2"))
    with pytest.raises(RuntimeError), database.session() as session:
        session.execute(text("SELECT 3"))
        raise RuntimeError("the caller gave up")
    statements, commits, rollbacks = (after - was for after, was in zip(_counts(), before, strict=True))
    assert (statements, commits, rollbacks) == (3, 1, 1)
