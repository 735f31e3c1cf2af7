"""a total that is a lower bound; the listings judged on a partly committed page

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 05:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "scan_checkpoints",
        sa.Column("total_is_lower_bound", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column(
        "scan_checkpoints",
        sa.Column(
            "page_judged_ids",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_column("scan_checkpoints", "page_judged_ids")
    op.drop_column("scan_checkpoints", "total_is_lower_bound")
