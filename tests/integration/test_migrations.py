"""The Alembic migrations build the schema the models declare: a model change
without its migration fails here, not on an operator's upgrade."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from devstack.stack import Stack
from todos.tables import metadata

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_migrated_schema_matches_the_models(stack: Stack) -> None:
    engine = create_engine(stack.database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == []
