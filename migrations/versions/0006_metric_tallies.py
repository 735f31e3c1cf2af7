"""metric tallies: the counters that outlive the rows they were counted from

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 06:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "metric_tallies",
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("label", sa.String(80), server_default="", nullable=False),
        sa.Column("value", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("name", "label", name=op.f("pk_metric_tallies")),
    )


def downgrade() -> None:
    op.drop_table("metric_tallies")
