"""watch paused reason: why a watch was paused when its owner did not pause it

A chat that refuses alerts (the bot blocked, removed from the group, the chat deleted)
pauses the watches alerting it; the reason is kept beside `paused` so that `watch list` and
`/watches` can say why. The owner's own pause stores none, and a resume clears it.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 01:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("watches", sa.Column("paused_reason", sa.String(300), nullable=True))


def downgrade() -> None:
    op.drop_column("watches", "paused_reason")
