"""Markets a scan can walk, by name (registry.py), each a `MarketSource` (base.py): the
simulated market (simulated.py) and DMarket (dmarket/), with the reference prices a page is
judged against (references/) and the fleet's budgets, breaker and clients (fleet/)."""
