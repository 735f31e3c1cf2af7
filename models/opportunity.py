"""The `scan_opportunities` table: the arbitrage opportunities a scan found, stored compactly.

The judged exit's profit and both exits' are stored with the fee they were judged with
(a fee depends on the title, the price and the day's reduced fees, so it cannot be derived
later); rows stored before that derive fee and profit from the two prices and the scan's
frozen fee (worker.domain.opportunities.fee_and_profit). The profit percent is kept in
integer hundredths, because results are ordered and cut by it in SQL.

The table is partitioned by `scan_day`, the UTC day its scan was created (the same for
every row of a scan), one partition a day in schema `scan_opportunity_days`
(worker.db.opportunity_days): retention drops a day whole, writing almost no WAL. A unique
key of a partitioned table must hold the partition key; since `scan_day` is a function of
`scan_id`, (scan_id, item_id, scan_day) is as unique as (scan_id, item_id), so a re-run
page's INSERT ... ON CONFLICT DO NOTHING stays harmless. No foreign key to the checkpoints:
the only writer is a page commit that holds its checkpoint's row, and cleanup deletes a
scan's opportunities itself (or drops their day), so a foreign key would only cost every
insert a lookup and every partition drop a lock on the checkpoints.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base
from models.item_key import ItemKey

# Ids keep growing across partitions (alert cursors compare them), so they come from one
# sequence rather than an identity column, which PostgreSQL 15 refuses on a partitioned table.
OPPORTUNITY_ID_SEQUENCE = "scan_opportunity_ids"


class ScanOpportunity(Base):
    __tablename__ = "scan_opportunities"
    __table_args__ = (
        PrimaryKeyConstraint("scan_id", "item_id", "scan_day"),
        {"postgresql_partition_by": "RANGE (scan_day)"},
    )

    scan_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    # A DMarket id (a canonical UUID) in 16 bytes, any other id exactly (models.item_key).
    item_id: Mapped[str] = mapped_column(ItemKey, nullable=False)
    scan_day: Mapped[date] = mapped_column(Date, nullable=False)
    # Commit order within a scan: what the alert follower's cursor walks.
    id: Mapped[int] = mapped_column(
        BigInteger,
        nullable=False,
        server_default=text(f"nextval('{OPPORTUNITY_ID_SEQUENCE}'::regclass)"),
    )
    title: Mapped[str] = mapped_column(Text, nullable=False)
    price_cents: Mapped[int] = mapped_column(Integer, nullable=False)
    reference_price_cents: Mapped[int] = mapped_column(Integer, nullable=False)
    # The profit percent in hundredths (12.35 % is 1235), rounded as it was judged.
    profit_hundredths: Mapped[int] = mapped_column(Integer, nullable=False)
    # The reference judged against: its kind (worker.domain.reference.REFERENCE_CODES, a
    # smallint because this table is the big one), its depth and when it was fetched. Null
    # in rows stored before references were a choice.
    reference_kind: Mapped[int | None] = mapped_column(SmallInteger)
    order_count: Mapped[int | None] = mapped_column(Integer)
    reference_fetched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # How the find was judged (DESIGN invariant 14; null in rows stored before): its
    # judged exit's fee in basis points and where it came from (worker.domain.fees.
    # FEE_SOURCE_CODES), both exits' profits in cents (null: no such price), its sales in 7
    # days and last sale, and its trade lock. Small types: this is the big table.
    fee_bps: Mapped[int | None] = mapped_column(SmallInteger)
    fee_source: Mapped[int | None] = mapped_column(SmallInteger)
    sell_now_profit_cents: Mapped[int | None] = mapped_column(Integer)
    listing_profit_cents: Mapped[int | None] = mapped_column(Integer)
    sales_7d: Mapped[int | None] = mapped_column(SmallInteger)
    last_sale_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    locked: Mapped[bool | None] = mapped_column(Boolean)
    lock_days: Mapped[int | None] = mapped_column(SmallInteger)
    page_seq: Mapped[int] = mapped_column(Integer, nullable=False)
    # When the page committed (now() of its transaction): shown to nobody today, but it is
    # the one record of when a find was made, and the bench's page timeline.
    found_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    @property
    def profit_percent(self) -> float:
        return self.profit_hundredths / 100
