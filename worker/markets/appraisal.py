"""A page's listings with the evidence they are judged on (worker.domain.appraisal): the
fees a sale pays, and for a candidate both exits' references and its liquidity.

Every listing gets the fee table and its judged reference. Only a candidate (a listing
that passes its price test with its judged exit's fee) costs more lookups: the other exit's
reference (the last sales of a scan judged against the best bid, which carry the sales in
7 days and the last sale; the best bid of one judged against last sales, which carries the
buy orders), and a judged reference older than its TTL is fetched again before a find is
stored. So the extra lookups stay few: a page of a hundred listings has a handful of
candidates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from worker.domain.appraisal import is_candidate
from worker.domain.evidence import Evidence
from worker.domain.fees import BandedFee, FeeTable
from worker.domain.listing import Item, Page, lock_of
from worker.domain.reference import BEST_BID, LAST_SALES, SECOND_MARKETS, Reference
from worker.domain.scan_params import ScanParams
from worker.markets.base import MarketSource
from worker.markets.dmarket.transport import DMarketTransport
from worker.markets.fees.configured import ConfiguredFees
from worker.markets.fees.registry import fee_source
from worker.markets.fees.source import FeeSource
from worker.markets.references.registry import other_exit_reference, skinport_seller_fee
from worker.markets.references.source import ReferenceSource
from worker.settings import Settings


class Appraiser:
    """Attaches evidence to a page's listings, for a scan's params."""

    def __init__(
        self,
        params: ScanParams,
        fees: FeeSource,
        other: ReferenceSource | None = None,
        judged: ReferenceSource | None = None,
        *,
        reference_ttl_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
        elsewhere_fee: BandedFee | None = None,
    ) -> None:
        """`judged`: the scan's reference source (refreshed when stale); `other`: the other
        exit's (None: the market has no other exit); `elsewhere_fee`: the seller fee of the
        second market a scan is judged against."""
        self._params = params
        self._elsewhere_fee = elsewhere_fee
        self._fees = fees
        self._other = other
        self._judged = judged
        self._ttl = reference_ttl_seconds
        self._clock = clock

    def appraised(self, items: Sequence[Item]) -> tuple[Item, ...]:
        table = self._fees.table()
        now = self._clock()
        shown = [replace(item, evidence=self._evidence(item.reference, None, table, now))
                 for item in items]  # fmt: skip
        candidates = [index for index, item in enumerate(shown) if self._candidate(item)]
        if not candidates:
            return tuple(shown)
        stale = [index for index in candidates if self._stale(shown[index].reference, now)]
        if stale and self._judged is not None:
            renewed = self._judged.refresh([shown[index] for index in stale])
            for index, reference in zip(stale, renewed, strict=True):
                shown[index] = self._with_reference(shown[index], reference, table, now)
            candidates = [index for index in candidates if self._candidate(shown[index])]
        if self._other is None or not candidates:
            return tuple(shown)
        others = self._other.references([shown[index] for index in candidates])
        for index, other in zip(candidates, others, strict=True):
            item = shown[index]
            shown[index] = replace(item, evidence=self._evidence(item.reference, other, table, now))
        return tuple(shown)

    def _candidate(self, item: Item) -> bool:
        low, high = self._params.price_band
        if not low <= item.price_cents <= high or item.evidence is None:
            return False
        return is_candidate(
            title=item.title,
            price_cents=item.price_cents,
            judged_kind=self._judged_kind(item),
            listed_reference_cents=item.reference_price_cents,
            evidence=item.evidence,
            rule=self._params.rule,
            locked=lock_of(item)[0],
        )

    def _judged_kind(self, item: Item) -> str | None:
        return self._params.reference if item.reference is None else item.reference.kind

    def _stale(self, reference: Reference | None, now: float) -> bool:
        return reference is not None and now - reference.fetched_at.timestamp() > self._ttl

    def _with_reference(
        self, item: Item, reference: Reference | None, table: FeeTable, now: float
    ) -> Item:
        price = None if reference is None else reference.price_cents
        renewed = replace(item, reference=reference, reference_price_cents=price)
        return replace(renewed, evidence=self._evidence(reference, None, table, now))

    def _evidence(
        self, judged: Reference | None, other: Reference | None, table: FeeTable, now: float
    ) -> Evidence:
        """Both exits' references: the judged one, and the other one once looked up."""
        references = [reference for reference in (judged, other) if reference is not None]
        by_kind = {reference.kind: reference for reference in references}
        # Only the judged reference can be a second market's: it has no other exit.
        elsewhere = judged if judged is not None and judged.kind in SECOND_MARKETS else None
        return Evidence(
            best_bid=by_kind.get(BEST_BID),
            last_sales=by_kind.get(LAST_SALES),
            fees=table,
            now=now,
            elsewhere=elsewhere,
            elsewhere_fee=self._elsewhere_fee,
        )


class AppraisedMarket:
    """`market`'s pages (references already looked up), each listing with its evidence."""

    def __init__(self, market: MarketSource, appraiser: Appraiser) -> None:
        self.market = market
        self._appraiser = appraiser

    def fetch_page(self, cursor: str | None, limit: int) -> Page:
        page = self.market.fetch_page(cursor, limit)
        return replace(page, items=self._appraiser.appraised(page.items))

    def inspect(self, item: Item) -> Item:
        return self.market.inspect(item)

    def close(self) -> None:
        self.market.close()


def dmarket_appraiser(
    params: ScanParams, settings: Settings, transport: DMarketTransport, judged: ReferenceSource
) -> Appraiser:
    """The evidence of a DMarket scan's listings: DMarket's fees (or the configured one),
    the other exit's reference and a stale judged one renewed, for candidates. Judged
    against a second market, the sale pays that market's seller fee: DMarket's is not
    asked for."""
    if params.reference in SECOND_MARKETS:
        return Appraiser(
            params,
            ConfiguredFees(params.fee),
            judged=judged,
            reference_ttl_seconds=settings.reference_ttl_seconds,
            elsewhere_fee=skinport_seller_fee(settings),
        )
    return Appraiser(
        params,
        fee_source(params, settings, transport),
        other=other_exit_reference(params, settings, transport),
        judged=judged,
        reference_ttl_seconds=settings.reference_ttl_seconds,
    )
