"""The reference source a scan's params name, built for its market."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from worker import broker_redis
from worker.domain.fees import SKINPORT_SELLER, BandedFee, bps_of
from worker.domain.listing import GAME_IDS
from worker.domain.reference import BEST_BID, LAST_SALES, SKINPORT, SUGGESTED
from worker.domain.scan_params import ScanParams
from worker.markets.dmarket.transport import DMarketTransport
from worker.markets.references.best_bid import BestBidReference
from worker.markets.references.cache import ReferenceCache
from worker.markets.references.last_sales import LastSalesReference
from worker.markets.references.second_market import SecondMarketReference
from worker.markets.references.source import ReferenceSource, SuggestedReference
from worker.markets.second_market.cache import SharedPriceList
from worker.markets.second_market.skinport import APP_IDS, skinport_price_list
from worker.settings import Settings


def dmarket_reference(
    params: ScanParams,
    settings: Settings,
    transport: DMarketTransport,
    should_stop: Callable[[], bool] = lambda: False,
) -> ReferenceSource | None:
    """The source of a DMarket scan's references; None for rows stored before references
    were a choice (they judge against the listing's own suggested price). A wait for a
    second market's request budget ends when `should_stop` says so (a drain)."""
    if params.reference is None:
        return None
    if params.reference == SUGGESTED:
        return SuggestedReference()
    if params.reference == SKINPORT:
        return skinport_reference(params, settings, should_stop)
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


def skinport_reference(
    params: ScanParams, settings: Settings, should_stop: Callable[[], bool] = lambda: False
) -> SecondMarketReference:
    """What listing a DMarket scan's titles on Skinport brings, from the fleet's read of
    Skinport's list of the scan's game in the configured currency."""
    shared = SharedPriceList(
        broker_redis.shared(settings.broker_url, settings.sentinel_master),
        SKINPORT,
        f"{APP_IDS[params.game]}:{settings.skinport_currency}",
        settings.skinport_list_seconds,
        should_stop=should_stop,
    )
    source = skinport_price_list(settings, params.game, should_stop)
    return SecondMarketReference(SKINPORT, shared, source, settings.skinport_undercut_cents)


def skinport_seller_fee(settings: Settings) -> BandedFee:
    """Skinport's seller fee as configured (its published 8 %, 6 % above $1,000)."""
    return BandedFee(
        SKINPORT_SELLER,
        bps_of(settings.skinport_fee),
        bps_of(settings.skinport_high_fee),
        settings.skinport_high_fee_above_cents,
    )


# The other exit's reference a candidate is looked up with (worker.markets.appraisal): the
# last sales (sales in 7 days, the last sale) beside a best bid, the best bid (the buy
# orders, the sell-now exit) beside last sales or a suggested price.
OTHER_EXIT = {BEST_BID: LAST_SALES, LAST_SALES: BEST_BID, SUGGESTED: BEST_BID}


def other_exit_reference(
    params: ScanParams, settings: Settings, transport: DMarketTransport
) -> ReferenceSource | None:
    """The source of the other exit of a DMarket scan's candidates (None: rows stored
    before references were a choice, or a second market's, which has one exit)."""
    if params.reference not in OTHER_EXIT:
        return None
    return dmarket_reference(
        replace(params, reference=OTHER_EXIT[params.reference]), settings, transport
    )
