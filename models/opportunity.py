"""The `scan_opportunities` table: the arbitrage opportunities a scan found."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    Numeric,
    SmallInteger,
    Text,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class ScanOpportunity(Base):
    __tablename__ = "scan_opportunities"
    # The unique pair is what makes a re-run page's INSERT ... ON CONFLICT DO NOTHING harmless.
    __table_args__ = (UniqueConstraint("scan_id", "item_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    scan_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("scan_checkpoints.scan_id", ondelete="CASCADE"), nullable=False
    )
    item_id: Mapped[str] = mapped_column(Text, nullable=False)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    price_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reference_price_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    fee_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    profit_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    profit_percent: Mapped[float] = mapped_column(Numeric(9, 2, asdecimal=False), nullable=False)
    # The reference judged against: its kind (worker.domain.reference.REFERENCE_CODES, a
    # smallint because this table is the big one), its depth and when it was fetched. Null
    # in rows stored before references were a choice.
    reference_kind: Mapped[int | None] = mapped_column(SmallInteger)
    order_count: Mapped[int | None] = mapped_column(Integer)
    reference_fetched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    page_seq: Mapped[int] = mapped_column(Integer, nullable=False)
    found_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
