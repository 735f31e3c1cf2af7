"""The `metric_tallies` table: the fleet's counters that no live row holds any more.

Most of what the metrics count is already in the rows (pages, items, opportunities of the
scans still stored). What leaves the rows is kept here, written in the very transaction
that changes the rows: the sums of the scans cleanup deleted, recoveries by cause, and the
cleanup's last success. One row per (name, label); values only grow.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class MetricTally(Base):
    __tablename__ = "metric_tallies"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    # One label value at most (a recovery's cause); '' when the tally has none.
    label: Mapped[str] = mapped_column(String(80), primary_key=True, server_default="")
    value: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
