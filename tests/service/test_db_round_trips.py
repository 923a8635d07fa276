"""The round-trip counters the step cost account reads (todo_db_*), on the real database."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from todos.core.db import Database

pytestmark = [pytest.mark.service, pytest.mark.timeout(120)]


def _counts() -> tuple[float | None, ...]:
    return (
        REGISTRY.get_sample_value("todo_db_statements_total"),
        REGISTRY.get_sample_value("todo_db_transactions_total", {"outcome": "commit"}),
        REGISTRY.get_sample_value("todo_db_transactions_total", {"outcome": "rollback"}),
    )


def test_each_statement_and_each_ended_transaction_is_counted(database: Database) -> None:
    before = _counts()
    with database.session() as session:
        session.execute(text("SELECT 1"))
        session.execute(text("SELECT 2"))
    with pytest.raises(RuntimeError), database.session() as session:
        session.execute(text("SELECT 3"))
        raise RuntimeError("the caller gave up")
    after = _counts()
    assert [(now or 0) - (was or 0) for now, was in zip(after, before, strict=True)] == [3, 1, 1]
