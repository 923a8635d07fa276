"""The round-trip counters the step cost account reads (todo_db_*), on the real database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from api.deps import Services
from tests.service.conftest import Clock
from todos.core.db import Database
from todos.core.users import User
from todos.tasks.models import TaskCreate

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


def test_completing_an_occurrence_is_one_transaction_of_three_statements(
    services: Services, user: User, clock: Clock
) -> None:
    """The step's first half: the task locked with its series in one read, its
    update, and both its events (lifecycle and field changes) in one insert."""
    due = (clock.now + timedelta(days=1)).isoformat()
    task = services.tasks.create_task(
        user,
        TaskCreate.model_validate(
            {"title": "Water the ferns", "due_at": due, "recurrence": {"rule": "daily"}}
        ),
    )
    before = _counts()
    services.tasks.complete_task(user, task.id)
    statements, commits, rollbacks = (
        (now or 0) - (was or 0) for now, was in zip(_counts(), before, strict=True)
    )
    assert (commits, rollbacks) == (1, 0)
    assert statements == 3
