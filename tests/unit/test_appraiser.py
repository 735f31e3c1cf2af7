"""A page's evidence: the fees for every listing, and for candidates only the other exit's
lookup and a stale judged reference fetched again (worker.markets.appraisal)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from worker.domain.fees import FeeTable
from worker.domain.listing import Item
from worker.domain.opportunities import Level
from worker.domain.reference import BEST_BID, LAST_SALES, Reference
from worker.domain.scan_params import ScanParams
from worker.markets.appraisal import Appraiser
from worker.testing.memory_fees import MemoryFees
from worker.testing.memory_references import MemoryReferenceSource

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC).timestamp()
PARAMS = ScanParams(
    game="csgo",
    market="dmarket",
    reference=BEST_BID,
    level_rule=Level("standard", 100, 10_000, 0.05),
)


def _listing(item_id: str, title: str, price: int, bid: int, fetched_ago: float) -> Item:
    fetched_at = datetime.fromtimestamp(NOW - fetched_ago, UTC)
    reference = Reference(BEST_BID, bid, 3, fetched_at)
    return Item(item_id, title, price, bid, reference=reference)


def _appraiser(
    judged: MemoryReferenceSource, other: MemoryReferenceSource, fees: MemoryFees
) -> Appraiser:
    return Appraiser(
        PARAMS, fees, other=other, judged=judged, reference_ttl_seconds=300, clock=lambda: NOW
    )


def test_only_candidates_cost_the_other_exits_lookup_and_every_listing_gets_the_fees() -> None:
    fees = MemoryFees(FeeTable(500, 1, (), NOW))
    other = MemoryReferenceSource({"A": (2_000, 5), "B": (2_000, 5)}, kind=LAST_SALES)
    judged = MemoryReferenceSource({}, kind=BEST_BID)
    page = [
        _listing("1", "A", 1_000, 2_000, 10),  # a candidate: 2000 - 100 - 1000 >> 5 %
        _listing("2", "B", 1_990, 2_000, 10),  # no candidate: a loss after the fee
    ]
    shown = _appraiser(judged, other, fees).appraised(page)
    assert fees.calls == 1 and other.lookups == [["A"]] and judged.lookups == []
    assert all(item.evidence is not None and item.evidence.fees.default_bps == 500
               for item in shown)  # fmt: skip
    assert shown[0].evidence is not None and shown[0].evidence.last_sales is not None
    assert shown[1].evidence is not None and shown[1].evidence.last_sales is None


def test_a_candidates_reference_older_than_its_ttl_is_fetched_again_and_judged_anew() -> None:
    fees = MemoryFees(FeeTable(500, 1, (), NOW))
    other = MemoryReferenceSource({"A": (2_000, 5), "C": (2_000, 5)}, kind=LAST_SALES)
    # Fetched anew, A's bid has fallen below the margin; C's still holds.
    judged = MemoryReferenceSource({"A": (1_000, 1), "C": (1_900, 2)}, kind=BEST_BID)
    page = [
        _listing("1", "A", 1_000, 2_000, 301),
        _listing("2", "C", 1_000, 2_000, 301),
        _listing("3", "D", 1_000, 2_000, 60),  # within its TTL: not asked again
    ]
    shown = _appraiser(judged, other, fees).appraised(page)
    assert judged.lookups == [["A", "C"]]
    renewed = {item.item_id: item for item in shown}
    assert renewed["1"].reference_price_cents == 1_000
    assert renewed["2"].reference is not None and renewed["2"].reference.price_cents == 1_900
    # Only the candidates left after the refresh are looked up for their other exit.
    assert other.lookups == [["C", "D"]]
    assert replace(renewed["3"], evidence=None) == replace(page[2], evidence=None)
