"""Markets by name: build the source a scan's params describe."""

from __future__ import annotations

from collections.abc import Callable

from worker.domain.scan_params import MARKETS, ScanParams
from worker.errors import InvalidInput
from worker.markets.appraisal import AppraisedMarket, Appraiser, dmarket_appraiser
from worker.markets.base import MarketSource
from worker.markets.fees.registry import fee_source
from worker.markets.simulated import SimulatedMarket, SimulatedOptions
from worker.settings import Settings


def build_market(
    params: ScanParams, settings: Settings, should_stop: Callable[[], bool] = lambda: False
) -> MarketSource:
    """The market of `params`; raises InvalidInput naming a bad market option (and a fault
    injected outside development: worker.markets.simulated.FAULT_OPTIONS).

    A market that waits (for a shared request budget) stops waiting once `should_stop`
    says so: the page task hands in its worker's drain flag.
    """
    if params.market not in MARKETS:
        raise InvalidInput(f"market must be one of {', '.join(MARKETS)}, got {params.market!r}")
    if params.market == "simulated":
        options = SimulatedOptions.from_json(params.market_options, development=settings.dev_mode)
        if not options.fee_table:
            return SimulatedMarket(options)  # judged with the scan's configured fee
        return AppraisedMarket(
            SimulatedMarket(options), Appraiser(params, fee_source(params, settings, None))
        )
    from worker.markets.dmarket.market import DMarketMarket, fleet_breaker
    from worker.markets.references.priced_market import ReferencedMarket
    from worker.markets.references.registry import dmarket_reference

    if params.fresh:
        from worker.markets.fresh.registry import fresh_feed

        return fresh_feed(params, settings, should_stop)
    # A scan's market shares the fleet's breaker: a DMarket that is down is waited for.
    market = DMarketMarket.from_params(params, settings, should_stop, fleet_breaker(settings))
    source = dmarket_reference(params, settings, market.transport, should_stop)
    if source is None:
        return market  # rows stored before references were a choice
    return AppraisedMarket(
        ReferencedMarket(market, source),
        dmarket_appraiser(params, settings, market.transport, source),
    )


def check_market_options(params: ScanParams, settings: Settings) -> None:
    """Refuse bad market options, or a reference the market cannot give, before a scan is
    stored."""
    build_market(params.configured(settings), settings).close()
