"""series: the recurrence set's exceptions (EXDATE, RDATE)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A server default: every series written before this has no exceptions.
    for name in ("exdates", "rdates"):
        op.add_column(
            "series",
            sa.Column(
                name, postgresql.ARRAY(sa.DateTime(timezone=True)), server_default="{}", nullable=False
            ),
        )


def downgrade() -> None:
    op.drop_column("series", "rdates")
    op.drop_column("series", "exdates")
