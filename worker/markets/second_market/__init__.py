"""Second markets: another market's whole price list, read once for the fleet and kept in the
broker's Redis (worker.markets.references.second_market judges DMarket listings against it)."""
