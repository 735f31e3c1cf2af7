"""The fee source of a scan's market, built from its params."""

from __future__ import annotations

from worker import broker_redis
from worker.domain.listing import GAME_IDS
from worker.domain.scan_params import FEE_SOURCE_DMARKET, ScanParams
from worker.markets.dmarket.transport import DMarketTransport
from worker.markets.fees.cache import FeeCache
from worker.markets.fees.configured import ConfiguredFees, SimulatedFees
from worker.markets.fees.dmarket import OFFER_TYPE, DMarketFees
from worker.markets.fees.source import FeeSource
from worker.settings import Settings


def fee_source(
    params: ScanParams, settings: Settings, transport: DMarketTransport | None
) -> FeeSource:
    """A DMarket scan's fees as DMarket publishes them (its frozen fee source `dmarket`),
    asked through `transport` (the scan's market's, so within the fleet's `fees` budget,
    signed as its requests are); else the scan's configured fee: the operator set
    MARKETSCAN_FEE, the simulated market, or rows stored before fees were looked up.

    The simulated market serves a fee table too (`fee_table=1`, worker.markets.fees.
    configured.SimulatedFees): reduced fees for a few titles, as DMarket's would be."""
    if (
        params.market == "dmarket"
        and params.fee_source == FEE_SOURCE_DMARKET
        and transport is not None
    ):
        game_id = GAME_IDS[params.game]
        client = broker_redis.shared(settings.broker_url, settings.sentinel_master)
        return DMarketFees(transport, game_id, FeeCache(client, OFFER_TYPE, game_id))
    if params.market == "simulated" and params.market_options.get("fee_table") == 1:
        return SimulatedFees(params.fee)
    return ConfiguredFees(params.fee)
