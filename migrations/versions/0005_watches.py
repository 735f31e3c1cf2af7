"""watches (recurring scans) and the passes they started

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 05:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "watches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("every_seconds", sa.Integer(), nullable=False),
        sa.Column("overlap", sa.String(length=20), server_default="skip", nullable=False),
        sa.Column("paused", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("buffered_slot_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_scan_id", sa.Uuid(), nullable=True),
        sa.Column("last_slot_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("skipped_slots", sa.Integer(), server_default="0", nullable=False),
        sa.Column("missed_slots", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("overlap IN ('skip', 'buffer_one')", name=op.f("ck_watches_overlap")),
        sa.CheckConstraint("every_seconds > 0", name=op.f("ck_watches_every_seconds_positive")),
        sa.CheckConstraint(
            "skipped_slots >= 0 AND missed_slots >= 0",
            name=op.f("ck_watches_slot_counts_non_negative"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watches")),
    )
    op.create_index(op.f("ix_watches_owner_id"), "watches", ["owner_id"])
    op.create_index(op.f("ix_watches_paused_next_due_at"), "watches", ["paused", "next_due_at"])
    op.create_table(
        "watch_passes",
        sa.Column("scan_id", sa.Uuid(), nullable=False),
        sa.Column("watch_id", sa.Uuid(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("slot_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("alerted_through_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["watch_id"],
            ["watches.id"],
            name=op.f("fk_watch_passes_watch_id_watches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("scan_id", name=op.f("pk_watch_passes")),
    )
    op.create_index(op.f("ix_watch_passes_watch_id"), "watch_passes", ["watch_id"])
    op.create_index(op.f("ix_watch_passes_created_at"), "watch_passes", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_watch_passes_created_at"), table_name="watch_passes")
    op.drop_index(op.f("ix_watch_passes_watch_id"), table_name="watch_passes")
    op.drop_table("watch_passes")
    op.drop_index(op.f("ix_watches_paused_next_due_at"), table_name="watches")
    op.drop_index(op.f("ix_watches_owner_id"), table_name="watches")
    op.drop_table("watches")
