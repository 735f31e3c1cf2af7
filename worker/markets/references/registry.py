"""The reference source a scan's params name, built for its market."""

from __future__ import annotations

from dataclasses import replace

from worker import broker_redis
from worker.domain.listing import GAME_IDS
from worker.domain.reference import BEST_BID, LAST_SALES, SUGGESTED
from worker.domain.scan_params import ScanParams
from worker.markets.dmarket.transport import DMarketTransport
from worker.markets.references.best_bid import BestBidReference
from worker.markets.references.cache import ReferenceCache
from worker.markets.references.last_sales import LastSalesReference
from worker.markets.references.source import ReferenceSource, SuggestedReference
from worker.settings import Settings


def dmarket_reference(
    params: ScanParams, settings: Settings, transport: DMarketTransport
) -> ReferenceSource | None:
    """The source of a DMarket scan's references; None for rows stored before references
    were a choice (they judge against the listing's own suggested price)."""
    if params.reference is None:
        return None
    if params.reference == SUGGESTED:
        return SuggestedReference()
    game_id = GAME_IDS[params.game]
    cache = ReferenceCache(
        broker_redis.shared(settings.broker_url, settings.sentinel_master),
        params.reference,
        game_id,
        settings.reference_ttl_seconds,
    )
    if params.reference == BEST_BID:
        return BestBidReference(transport, game_id, cache)
    assert params.reference == LAST_SALES, params.reference
    return LastSalesReference(transport, game_id, cache)


# The other exit's reference a candidate is looked up with (worker.markets.appraisal): the
# last sales (sales in 7 days, the last sale) beside a best bid, the best bid (the buy
# orders, the sell-now exit) beside last sales or a suggested price.
OTHER_EXIT = {BEST_BID: LAST_SALES, LAST_SALES: BEST_BID, SUGGESTED: BEST_BID}


def other_exit_reference(
    params: ScanParams, settings: Settings, transport: DMarketTransport
) -> ReferenceSource | None:
    """The source of the other exit of a DMarket scan's candidates (None: rows stored
    before references were a choice)."""
    if params.reference is None:
        return None
    return dmarket_reference(
        replace(params, reference=OTHER_EXIT[params.reference]), settings, transport
    )
