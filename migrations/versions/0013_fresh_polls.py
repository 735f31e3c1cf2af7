"""fresh polls: when a fresh watch's resting scan polls next

A fresh watch is one long-lived scan that polls DMarket's newest offers. Between two polls
its row rests: no lease, no queued message, `next_poll_at` saying when beat's fresh clock
publishes the next poll. The partial index keeps the clock's look for due polls on the few
resting rows.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 04:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "scan_checkpoints", sa.Column("next_poll_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        "ix_scan_checkpoints_next_poll_at",
        "scan_checkpoints",
        ["next_poll_at"],
        postgresql_where=sa.text("next_poll_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_scan_checkpoints_next_poll_at", table_name="scan_checkpoints")
    op.drop_column("scan_checkpoints", "next_poll_at")
