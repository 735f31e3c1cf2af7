"""The `watches` table (recurring scans) and `watch_passes` (each pass a watch started)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
    false,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

OVERLAP_VALUES = ("skip", "buffer_one")


class ScanWatch(Base):
    __tablename__ = "watches"
    __table_args__ = (
        CheckConstraint(
            "overlap IN (" + ", ".join(f"'{value}'" for value in OVERLAP_VALUES) + ")",
            name="overlap",
        ),
        CheckConstraint("every_seconds > 0", name="every_seconds_positive"),
        CheckConstraint(
            "skipped_slots >= 0 AND missed_slots >= 0", name="slot_counts_non_negative"
        ),
        # Beat's clock asks for the due, running watches every tick.
        Index("ix_watches_paused_next_due_at", "paused", "next_due_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    owner_id: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # The validated request (ScanParams.to_json); fee and level rule are frozen per pass.
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    every_seconds: Mapped[int] = mapped_column(Integer, nullable=False)
    overlap: Mapped[str] = mapped_column(String(20), nullable=False, server_default="skip")
    paused: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    # Why, when it was not its owner's pause (a chat that refuses alerts); cleared on resume.
    paused_reason: Mapped[str | None] = mapped_column(String(300))
    # The next slot; advanced only by a compare-and-set on its old value.
    next_due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # buffer_one: the slot that fell due while the previous pass ran, to run when it ends.
    buffered_slot_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_scan_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    last_slot_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Slots not run because the previous pass still ran (skip, or a full buffer).
    skipped_slots: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # Slots not run because they were older than the catch-up window (an outage).
    missed_slots: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class WatchPass(Base):
    """One slot's pass: written with the slot's compare-and-set, before its scan starts."""

    __tablename__ = "watch_passes"

    scan_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    watch_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("watches.id", ondelete="CASCADE"), nullable=False, index=True
    )
    chat_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    slot_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # The highest scan_opportunities.id already alerted (claimed by a compare-and-set).
    alerted_through_id: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), index=True
    )
