"""The fee source of a scan's market, built from its params."""

from __future__ import annotations

from worker import broker_redis
from worker.domain.listing import GAME_IDS
from worker.domain.scan_params import ScanParams
from worker.markets.dmarket.transport import DMarketTransport
from worker.markets.fees.cache import FeeCache
from worker.markets.fees.configured import ConfiguredFees, SimulatedFees
from worker.markets.fees.dmarket import OFFER_TYPE, DMarketFees
from worker.markets.fees.source import FeeSource
from worker.settings import Settings


def fee_source(
    params: ScanParams, settings: Settings, transport: DMarketTransport | None
) -> FeeSource:
    """A DMarket scan's fees as DMarket publishes them, asked through `transport` (the
    scan's market's, so within the fleet's `fees` budget, signed as its requests are); the
    simulated market's table given in code, with the scan's fee as its default; and the
    scan's configured fee where there is no transport to ask with."""
    if params.market == "dmarket" and transport is not None:
        game_id = GAME_IDS[params.game]
        client = broker_redis.shared(settings.broker_url, settings.sentinel_master)
        return DMarketFees(transport, game_id, FeeCache(client, OFFER_TYPE, game_id))
    if params.market == "simulated":
        return SimulatedFees(params.fee)
    return ConfiguredFees(params.fee)
