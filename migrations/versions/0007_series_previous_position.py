"""series: where the previous occurrence stood in the rule, so it can be reopened

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("series", sa.Column("previous_anchor_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("series", sa.Column("previous_rule_index", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("series", "previous_rule_index")
    op.drop_column("series", "previous_anchor_at")
