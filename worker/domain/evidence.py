"""What a listing is judged on beyond its price (worker.domain.appraisal): each exit's
reference and the fee table a sale pays."""

from __future__ import annotations

from dataclasses import dataclass

from worker.domain.fees import FeeTable
from worker.domain.reference import Reference


@dataclass(frozen=True)
class Evidence:
    """What is known of a listing beyond its price: each exit's reference (None: the
    market has none) and the fee table the sale pays, as of `now` (Unix seconds)."""

    best_bid: Reference | None
    last_sales: Reference | None
    fees: FeeTable
    now: float
