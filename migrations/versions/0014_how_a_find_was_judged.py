"""how a find was judged: its fee and source, both exits, liquidity and lock

A find now states how it was judged (DESIGN invariant 14): the fee of its judged exit in
basis points and where that fee came from (DMarket's reduced or default fee, or the
configured one), the profit of selling now into the best buy order and of selling by
listing, its sales in the last 7 days and the last sale's time, and whether it is
trade-locked and for how many days. Each is nullable (rows stored before have none) and
small, since scan_opportunities is the big table; adding a nullable column without a
default rewrites nothing. A scan counts the candidates its level's liquidity minimums
refused in `illiquid_items`, as it counts `unreferenced_items`.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 04:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIND_COLUMNS = (
    ("fee_bps", sa.SmallInteger()),
    ("fee_source", sa.SmallInteger()),
    ("sell_now_profit_cents", sa.Integer()),
    ("listing_profit_cents", sa.Integer()),
    ("sales_7d", sa.SmallInteger()),
    ("last_sale_at", sa.DateTime(timezone=True)),
    ("locked", sa.Boolean()),
    ("lock_days", sa.SmallInteger()),
)


def upgrade() -> None:
    for name, kind in FIND_COLUMNS:
        op.add_column("scan_opportunities", sa.Column(name, kind, nullable=True))
    op.add_column(
        "scan_checkpoints",
        sa.Column("illiquid_items", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_column("scan_checkpoints", "illiquid_items")
    for name, _ in reversed(FIND_COLUMNS):
        op.drop_column("scan_opportunities", name)
