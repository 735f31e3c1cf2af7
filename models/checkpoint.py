"""The `scan_checkpoints` table: one row per scan, the single source of truth of its progress.

The table is partitioned by range of `created_at`, one partition per UTC day in schema
`scan_checkpoint_days` (worker.db.opportunity_days), the same days as its scans'
opportunities: retention drops a day of both tables whole, writing almost no WAL. A unique
key of a partitioned table must hold the partition key, so `scan_id` is unique together
with `created_at` only; across days PostgreSQL refuses a second row of an id through a
trigger that every partition carries, which waits on the id's row of `scan_id_stripes`
before it looks (migration 0010 says why this and not a registry of ids).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base
from models.status import ScanStatus

_STATUS_VALUES = ", ".join(f"'{status.value}'" for status in ScanStatus)

# Who drives a scan forward. `chain`: the page tasks, with leases, fences and recovery.
# `caller`: the user's own loop through StateManager; recovery never touches those rows.
RUNNER_CHAIN = "chain"
RUNNER_CALLER = "caller"
# Ids come from one sequence rather than an identity column, which PostgreSQL 15 refuses
# on a partitioned table.
CHECKPOINT_ID_SEQUENCE = "scan_checkpoint_ids"


class ScanCheckpoint(Base):
    __tablename__ = "scan_checkpoints"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUS_VALUES})", name="status"),
        CheckConstraint("processed_items >= 0", name="processed_items_non_negative"),
        CheckConstraint("total_items IS NULL OR total_items >= 0", name="total_items_non_negative"),
        CheckConstraint("page_seq >= 0 AND page_offset >= 0", name="page_position_non_negative"),
        CheckConstraint(f"runner IN ('{RUNNER_CHAIN}', '{RUNNER_CALLER}')", name="runner"),
        Index("ix_scan_checkpoints_status_lease_expires_at", "status", "lease_expires_at"),
        Index(
            "ix_scan_checkpoints_next_poll_at",
            "next_poll_at",
            postgresql_where=text("next_poll_at IS NOT NULL"),
        ),
        Index("ix_scan_checkpoints_status_updated_at", "status", "updated_at"),
        PrimaryKeyConstraint("id", "created_at"),
        UniqueConstraint("scan_id", "created_at"),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )

    id: Mapped[int] = mapped_column(
        BigInteger,
        nullable=False,
        server_default=text(f"nextval('{CHECKPOINT_ID_SEQUENCE}'::regclass)"),
    )
    scan_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    user_id: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    operation_type: Mapped[str] = mapped_column(String(50), nullable=False)
    cursor: Mapped[str | None] = mapped_column(Text)
    processed_items: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    total_items: Mapped[int | None] = mapped_column(Integer)
    # The market's total is only "at least total_items": DMarket caps the total it reports
    # at 10,000, and a live listing can grow past what it said.
    total_is_lower_bound: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=false()
    )
    timestamp: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    # SQLAlchemy reserves the attribute name `metadata` on declarative classes.
    meta: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    status: Mapped[str] = mapped_column(
        String(20), nullable=False, server_default=ScanStatus.IN_PROGRESS.value
    )
    error_message: Mapped[str | None] = mapped_column(Text)
    params: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    page_seq: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    page_offset: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # The listings already judged on the current page, by id, while it is partly committed
    # (drained or paused mid-page): the re-fetched page skips exactly these, wherever they
    # moved. Emptied when the page completes.
    page_judged_ids: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")
    )
    page_deliveries: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # Items walked but not stored: a listing whose values no column can hold (logged why).
    skipped_items: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # Listings judged no opportunity because the market gave no reference for them (no buy
    # order, no sale): not an error, but worth seeing in the scan's status.
    unreferenced_items: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # Candidates (priced well enough) that failed their level's liquidity minimums.
    illiquid_items: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # Why a completed scan ended where it did, when the market's answers ended it early
    # (a repeating cursor, too many empty pages in a row).
    note: Mapped[str | None] = mapped_column(Text)
    runner: Mapped[str] = mapped_column(String(10), nullable=False, server_default=RUNNER_CALLER)
    lease_token: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # The worker running the page; while the page is queued, the worker that published it.
    lease_owner: Mapped[str | None] = mapped_column(Text)
    # The heartbeat of a running page: renewed while it fetches, judges and waits.
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The Celery task id of the delivery that holds the running lease: a redelivery or a
    # retry of that very message may take the page back at once, any other copy may not.
    lease_task_id: Mapped[str | None] = mapped_column(Text)
    # Set while the due page waits in the broker (published, not yet claimed): a queued
    # page is alive however long it waits, and holds no lease.
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A fresh watch's scan between two polls: when beat's fresh clock publishes the next
    # one. A resting poll holds no lease and no message, and is neither queued nor dying
    # (invariant 8); recovery leaves it to the clock.
    next_poll_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    recoveries: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class ScanIdStripe(Base):
    """One of the rows that inserts of a scan id update before they look the id up, so
    that two inserts of one id, into any two days, take turns (migration 0010); nothing
    else reads or writes them."""

    __tablename__ = "scan_id_stripes"
    # Room on each page for the versions the updates write, so they stay HOT.
    __table_args__ = ({"postgresql_with": {"fillfactor": 50}},)

    stripe: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
