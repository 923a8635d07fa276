"""series: when the sweeper last checked a series' workflow; outbox: relay leases and poison rows

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENDING = "published_at IS NULL AND quarantined_at IS NULL"


def upgrade() -> None:
    op.add_column("series", sa.Column("workflow_checked_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("outbox", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("outbox", sa.Column("strikes", sa.Integer(), server_default="0", nullable=False))
    op.add_column("outbox", sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=True))
    # The relay's indexes leave set-aside rows out, as its claim does.
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.drop_index("ix_outbox_pending_key", table_name="outbox")
    op.create_index("ix_outbox_pending", "outbox", ["id"], unique=False, postgresql_where=sa.text(_PENDING))
    op.create_index(
        "ix_outbox_pending_key",
        "outbox",
        ["partition_key", "id"],
        unique=False,
        postgresql_where=sa.text(_PENDING),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_pending_key", table_name="outbox")
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.create_index(
        "ix_outbox_pending", "outbox", ["id"], unique=False, postgresql_where=sa.text("published_at IS NULL")
    )
    op.create_index(
        "ix_outbox_pending_key",
        "outbox",
        ["partition_key", "id"],
        unique=False,
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.drop_column("outbox", "quarantined_at")
    op.drop_column("outbox", "strikes")
    op.drop_column("outbox", "lease_until")
    op.drop_column("series", "workflow_checked_at")
