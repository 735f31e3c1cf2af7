"""The fresh feed a fresh scan's params describe, on the fleet's DMarket."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from worker import broker_redis
from worker.domain.scan_params import FRESH_API, ScanParams
from worker.markets.appraisal import dmarket_appraiser
from worker.markets.dmarket.market import DMarketMarket, fleet_breaker
from worker.markets.fresh.feed import FreshFeed
from worker.markets.fresh.shared_walk import SharedWalk
from worker.markets.references.registry import dmarket_reference
from worker.settings import Settings


def fresh_feed(
    params: ScanParams, settings: Settings, should_stop: Callable[[], bool] = lambda: False
) -> FreshFeed:
    """Polls of the game's v2 offers newest first, unfiltered (one walk serves every fresh
    watch of the game whatever its band), on the budget's priority lane."""
    # A watch's request has no moment yet (each start of its scan freezes one): its options
    # are checked (worker.markets.registry.check_market_options) as if it began now.
    since = params.fresh_since or datetime.now(UTC).isoformat()
    walked = replace(
        params, market_options={"order_by": "createdAt", "order_dir": "desc", "api": FRESH_API}
    )
    walker = DMarketMarket.from_params(
        walked, settings, should_stop, fleet_breaker(settings), priority=True, whole_listing=True
    )
    group = f"dmarket:{params.game}:{FRESH_API}"
    shared = SharedWalk(
        broker_redis.shared(settings.broker_url, settings.sentinel_master),
        group,
        settings.fresh_share_seconds,
    )
    judged = dmarket_reference(params, settings, walker.transport, should_stop)
    return FreshFeed(
        walker,
        judged,
        shared,
        since=since,
        price_band=params.price_band,
        lookback_seconds=settings.fresh_lookback_seconds,
        max_gap_pages=settings.fresh_max_gap_pages,
        appraiser=None
        if judged is None
        else dmarket_appraiser(params, settings, walker.transport, judged),
    )
