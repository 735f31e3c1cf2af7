"""What a listing is judged on beyond its price (worker.domain.appraisal): each exit's
reference and the fee a sale pays there."""

from __future__ import annotations

from dataclasses import dataclass

from worker.domain.fees import BandedFee, FeeTable
from worker.domain.reference import Reference


@dataclass(frozen=True)
class Evidence:
    """What is known of a listing beyond its price: each exit's reference (None: the
    market has none) and the fee table the sale pays, as of `now` (Unix seconds).

    `elsewhere`: a second market's reference (what listing the item there brings) and
    `elsewhere_fee` its seller fee, for a scan judged against that market.
    """

    best_bid: Reference | None
    last_sales: Reference | None
    fees: FeeTable
    now: float
    elsewhere: Reference | None = None
    elsewhere_fee: BandedFee | None = None
