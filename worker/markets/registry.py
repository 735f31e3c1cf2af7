"""Markets by name: build the source a scan's params describe."""

from __future__ import annotations

from worker.domain.scan_params import ScanParams
from worker.markets.base import MarketSource
from worker.markets.simulated import SimulatedMarket, SimulatedOptions
from worker.settings import Settings


def build_market(params: ScanParams, settings: Settings) -> MarketSource:
    """The market of `params`; raises InvalidInput naming a bad market option."""
    if params.market == "simulated":
        return SimulatedMarket(SimulatedOptions.from_json(params.market_options))
    from worker.markets.dmarket import DMarketMarket

    return DMarketMarket.from_params(params, settings)


def check_market_options(params: ScanParams, settings: Settings) -> None:
    """Refuse bad market options before a scan is stored."""
    build_market(params, settings).close()
