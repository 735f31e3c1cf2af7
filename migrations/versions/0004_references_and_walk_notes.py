"""each opportunity's reference (kind, depth, age); listings with no reference; walk notes

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 06:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: adding them rewrites nothing in a big scan_opportunities.
    op.add_column("scan_opportunities", sa.Column("reference_kind", sa.SmallInteger()))
    op.add_column("scan_opportunities", sa.Column("order_count", sa.Integer()))
    op.add_column(
        "scan_opportunities", sa.Column("reference_fetched_at", sa.DateTime(timezone=True))
    )
    op.add_column(
        "scan_checkpoints",
        sa.Column("unreferenced_items", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column("scan_checkpoints", sa.Column("note", sa.Text()))


def downgrade() -> None:
    op.drop_column("scan_checkpoints", "note")
    op.drop_column("scan_checkpoints", "unreferenced_items")
    op.drop_column("scan_opportunities", "reference_fetched_at")
    op.drop_column("scan_opportunities", "order_count")
    op.drop_column("scan_opportunities", "reference_kind")
