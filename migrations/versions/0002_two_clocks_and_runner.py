"""two clocks (queued vs running), who runs a scan, skipped items

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 04:15:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "scan_checkpoints",
        sa.Column("runner", sa.String(length=10), server_default="caller", nullable=False),
    )
    op.add_column("scan_checkpoints", sa.Column("lease_task_id", sa.Text(), nullable=True))
    op.add_column(
        "scan_checkpoints",
        sa.Column("skipped_items", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "scan_checkpoints", sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_check_constraint(
        op.f("ck_scan_checkpoints_runner"), "scan_checkpoints", "runner IN ('chain', 'caller')"
    )
    # Before this revision only the page chain stored scan params: those rows are its own.
    op.execute("UPDATE scan_checkpoints SET runner = 'chain' WHERE params IS NOT NULL")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_scan_checkpoints_runner"), "scan_checkpoints", type_="check")
    op.drop_column("scan_checkpoints", "queued_at")
    op.drop_column("scan_checkpoints", "skipped_items")
    op.drop_column("scan_checkpoints", "lease_task_id")
    op.drop_column("scan_checkpoints", "runner")
