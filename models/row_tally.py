"""The `row_tallies` table: what the stored checkpoints and opportunities count, kept up to
date by triggers in the very statements that write them (revision 0011).

The metrics exporter reads these few rows instead of counting and summing every stored row
at each scrape, so a scrape costs the same at a million finds as at none. The counts are
spread over shards, a row each, and a transaction adds to the shard of its own database
backend: concurrent page commits rarely queue on one row, and a transaction only ever
locks one shard, so two never wait on each other's shards in opposite orders. A count is
the sum of its column over the shards.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, SmallInteger
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

# Shards: a backend adds to shard pg_backend_pid() % SHARDS (the triggers of revision 0011).
SHARDS = 64


class RowTally(Base):
    __tablename__ = "row_tallies"

    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    # Checkpoints by status, every runner's (the `marketscan_scans` gauge).
    scans_in_progress: Mapped[int] = mapped_column(BigInteger, server_default="0")
    scans_paused: Mapped[int] = mapped_column(BigInteger, server_default="0")
    scans_completed: Mapped[int] = mapped_column(BigInteger, server_default="0")
    scans_failed: Mapped[int] = mapped_column(BigInteger, server_default="0")
    scans_cancelled: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # The page chain's rows' page_seq, processed_items and skipped_items, summed; a
    # caller's own loop (runner 'caller') keeps numbers of its own, not counted here.
    chain_pages: Mapped[int] = mapped_column(BigInteger, server_default="0")
    chain_items: Mapped[int] = mapped_column(BigInteger, server_default="0")
    chain_skipped: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # Rows of scan_opportunities.
    opportunities: Mapped[int] = mapped_column(BigInteger, server_default="0")
